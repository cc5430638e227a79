"""The CUDA-graph path's logic on CPU, with a fake capture that replays by re-running the forward
on the static buffers: which shapes get graphs, copy-in / replay / copy-out, eager fallback for
other shapes and failed captures, and graph output == eager output through the real predictor."""

import logging

import pytest
import torch

from mmscale.errors import ConfigError
from mmscale.serve.cuda_graphs import GraphedForward, graph_shapes
from mmscale.serve.items import Item
from tests.serve.conftest import jpeg


def fake_capture(run, static):
    """Stands in for CUDA capture: ``replay`` recomputes ``run(*static)`` into the same output tensors."""
    outputs = run(*static)
    captured = []

    def replay():
        fresh = run(*static)
        for out, new in zip(outputs if isinstance(outputs, tuple) else (outputs,),
                            fresh if isinstance(fresh, tuple) else (fresh,)):
            out.copy_(new)
        captured.append(1)

    return replay, outputs


def test_graph_shapes_cover_exactly_the_padded_pairs_that_can_occur():
    shapes = graph_shapes(4, max_batch=32, max_captions=2)
    assert shapes["embed_image"] == [(1,), (2,), (3,), (4,)] and shapes["embed_text"] == [(1,), (2,), (3,), (4,)]
    # B requests carry B..2B captions: images <= captions <= bucket(2 x images)
    assert shapes["match"] == [(1, 1), (1, 2), (2, 2), (2, 3), (2, 4), (3, 3), (3, 4), (4, 4)]
    assert len(graph_shapes(16, 32, 16)["match"]) == 36
    small = graph_shapes(16, max_batch=2, max_captions=1)
    assert small["embed_image"] == [(1,), (2,)] and small["embed_text"] == [(1,), (2,)]
    assert small["match"] == [(1, 1), (2, 2)]


def test_graphed_forward_replays_captured_shapes_and_runs_other_shapes_eager():
    model = torch.nn.Linear(3, 2)
    calls = []

    def forward(m, x):
        calls.append(tuple(x.shape))
        return m(x) * 2

    graphed = GraphedForward(forward, model, fake_capture)
    assert graphed.capture((torch.zeros(4, 3),))
    x = torch.randn(4, 3)
    with torch.no_grad():
        out = graphed(model, x)
        assert torch.allclose(out, model(x) * 2) and graphed.replays == 1  # the new values were copied in
        out.fill_(7.0)  # the caller owns a copy: the graph's static output is untouched
        y = torch.randn(4, 3)
        assert torch.allclose(graphed(model, y), model(y) * 2) and graphed.replays == 2
        other = torch.randn(5, 3)  # no graph for 5 rows: eager
        assert torch.allclose(graphed(model, other), model(other) * 2) and graphed.replays == 2


def test_a_failed_capture_leaves_that_shape_eager(caplog):
    def broken_capture(run, static):
        raise RuntimeError("operation not permitted when stream is capturing")

    model = torch.nn.Linear(3, 2)
    graphed = GraphedForward(lambda m, x: m(x), model, broken_capture)
    with caplog.at_level(logging.WARNING):
        assert not graphed.capture((torch.zeros(2, 3),))
    assert "runs eager" in caplog.text
    with torch.no_grad():
        x = torch.randn(2, 3)
        assert torch.allclose(graphed(model, x), model(x)) and graphed.replays == 0


def test_graphs_through_the_predictor_equal_eager(tiny_predictor):
    items = [Item("match", jpeg(64 + 8 * k, 48, seed=k), [f"caption {k}"] * (1 + k % 2)) for k in range(5)]
    images = [Item("embed_image", jpeg(seed=k)) for k in range(3)]
    texts = [Item("embed_text", captions=["a red cube", "a cat"])]
    eager = {"match": [tiny_predictor.predict("match", items[:n]) for n in (1, 3, 5)],
             "embed_image": tiny_predictor.predict("embed_image", images),
             "embed_text": tiny_predictor.predict("embed_text", texts)}
    saved = (tiny_predictor.forwards, tiny_predictor.pad_buckets, tiny_predictor.max_graph_batch)
    try:
        tiny_predictor.max_graph_batch = 4
        recorded = tiny_predictor.use_graphs(fake_capture, max_batch=8, max_captions=2)
        shapes = graph_shapes(4, 8, 2)
        assert recorded == sum(len(v) for v in shapes.values())
        graphed = {"match": [tiny_predictor.predict("match", items[:n]) for n in (1, 3, 5)],
                   "embed_image": tiny_predictor.predict("embed_image", images),
                   "embed_text": tiny_predictor.predict("embed_text", texts)}
        # 1 request -> (1, 1); 3 requests, 4 captions -> (3, 4); 5 requests -> 6 images: eager
        assert tiny_predictor.forwards["match"].replays == 2
        assert tiny_predictor.forwards["embed_image"].replays == 1
        assert tiny_predictor.forwards["embed_text"].replays == 1
    finally:
        tiny_predictor.forwards, tiny_predictor.pad_buckets, tiny_predictor.max_graph_batch = saved
    for a_batch, b_batch in zip(eager["match"], graphed["match"]):
        for a, b in zip(a_batch, b_batch):
            assert a.itm_prob == pytest.approx(b.itm_prob, abs=1e-4)
            assert a.itc_similarity == pytest.approx(b.itc_similarity, abs=1e-4)
    for task in ("embed_image", "embed_text"):
        for a, b in zip(eager[task], graphed[task]):
            assert torch.allclose(torch.tensor(a.embeddings), torch.tensor(b.embeddings), atol=1e-4)


def test_cuda_graphs_are_refused_on_cpu_naming_the_field(tiny_predictor):
    from mmscale.serve.predictor import ModelPredictor

    with pytest.raises(ConfigError, match="serve.cuda_graphs"):
        ModelPredictor(tiny_predictor.model, tiny_predictor.tokenizer, max_text_len=32, max_image_pixels=10**6,
                       device="cpu", cuda_graphs=True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_real_cuda_graphs_equal_eager_on_the_device():
    """On a GPU: every small-batch shape is captured, replays serve the batches, scores equal eager."""
    from mmscale.data.tokenizer import load_tokenizer
    from mmscale.serve.model_loader import load_model
    from mmscale.serve.predictor import ModelPredictor

    def predictor(graphs):
        model, _ = load_model(None, "tiny", ())
        p = ModelPredictor(model, load_tokenizer(), max_text_len=32, max_image_pixels=10**6, device="cuda",
                           cuda_graphs=graphs, max_graph_batch=4)
        p.warm_buckets(max_batch=8, max_captions=2)
        return p

    eager, graphed = predictor(False), predictor(True)
    assert all(isinstance(f, GraphedForward) and len(f.graphs) == len(graph_shapes(4, 8, 2)[task])
               for task, f in graphed.forwards.items())
    items = [Item("match", jpeg(64 + 8 * k, 48, seed=k), [f"caption {k}"] * (1 + k % 2)) for k in range(5)]
    for n in (1, 2, 3, 5):
        for a, b in zip(eager.predict("match", items[:n]), graphed.predict("match", items[:n])):
            assert a.itm_prob == pytest.approx(b.itm_prob, abs=1e-3)
            assert a.itc_similarity == pytest.approx(b.itc_similarity, abs=1e-3)
    images = [Item("embed_image", jpeg(seed=k)) for k in range(3)]
    for a, b in zip(eager.predict("embed_image", images), graphed.predict("embed_image", images)):
        assert torch.allclose(torch.tensor(a.embeddings), torch.tensor(b.embeddings), atol=1e-3)
    assert graphed.forwards["match"].replays == 3 and graphed.forwards["embed_image"].replays == 1
