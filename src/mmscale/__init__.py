"""mmscale: will this image+text architecture and pipeline scale, and where does the time go?

Data flows one way: ``data`` -> ``model`` -> ``train`` / ``serve`` -> ``bench`` -> ``report``,
with ``cli`` on top and ``config`` underneath.
"""

__version__ = "0.1.0"
