"""Every ``mmscale bench`` command says what it measures and shows how it is run."""

import pytest

from mmscale.cli import build_parser, command_parser, main


def bench_names() -> list[str]:
    parser = command_parser(build_parser(), ["bench"])
    return sorted(next(a.choices for a in parser._actions if a.dest == "bench"))


def test_the_input_and_serving_benchmarks_are_commands():
    assert {"decode-auto", "gpu-decode", "index-memory", "serve"} <= set(bench_names())


@pytest.mark.parametrize("name", bench_names())
def test_each_benchmark_has_a_description_and_examples(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", name, "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0
    usage, description, *rest = out.split("\n\n")
    assert usage.startswith(f"usage: mmscale bench {name}") and len(description.split()) >= 8
    assert f"mmscale bench {name} " in "\n\n".join(rest)  # an example of a whole command line
