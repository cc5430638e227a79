import io

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_predictor():
    """The tiny preset's model (random init, fp32, CPU) behind the real predictor."""
    from mmscale.serve.config import ServeConfig
    from mmscale.serve.run import build_predictor

    torch.set_num_threads(1)
    return build_predictor(ServeConfig(device="cpu"), preset="tiny")


def jpeg(width=96, height=72, seed=0, fmt="JPEG") -> bytes:
    import numpy as np
    from PIL import Image

    arr = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def make_jpeg():
    return jpeg
