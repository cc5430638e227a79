"""The whole-step CUDA graph: its bookkeeping on CPU with a stand-in graph (copy-in, replay,
LR schedule outside the graph, copies out, uncaptured fallback for other shapes), the refusals,
and on a GPU the real capture against the ordinary step."""

import copy

import pytest
import torch

from mmscale.train.optim import build_optimizer, build_scheduler
from mmscale.train.step import TrainStep
from mmscale.train.step_graph import GraphedTrainStep, GraphUnsupported, check_graphable, graph_train_step
from mmscale.train.synthetic import synthetic_batch
from tests.train.test_step import small_model


class RecordingGraph:
    """Stands in for a CUDA graph: ``record`` keeps the step without running it (as capture
    does); ``replay`` runs it and writes its results into the same output tensors."""

    def __init__(self):
        self.fn, self.outputs = None, {}

    def record(self, fn):
        self.fn = fn
        return self.outputs

    def replay(self):
        fresh = self.fn()
        for key, value in fresh.items():
            if key in self.outputs:
                self.outputs[key].copy_(value)
            else:
                self.outputs[key] = value.clone()


def make_step(model, lr=1e-2):
    optimizer = build_optimizer(model, lr, 0.01)
    scheduler = build_scheduler(optimizer, warmup_steps=2, total_steps=10, min_ratio=0.1)
    return TrainStep(model, optimizer, scheduler, precision="fp32", grad_clip=1.0)


def batches(cfg):
    full = [synthetic_batch(cfg, 4, seed=s, pad_frac=0.25) for s in range(5)]
    short = synthetic_batch(cfg, 3, seed=9)  # a batch shortened by bad samples
    return full[:3] + [short] + full[3:]


def test_graphed_step_trains_like_the_ordinary_step():
    base = small_model()
    twin = copy.deepcopy(base)
    plain, graphed_inner = make_step(twin), make_step(base)
    graphed = GraphedTrainStep(graphed_inner, warmup_steps=2, graph_factory=RecordingGraph)
    for pixels, ids, mask in batches(base.cfg):
        want = plain(pixels, ids, mask)
        got = graphed(pixels, ids, mask)
        torch.testing.assert_close(got["loss"], want["loss"])
        assert graphed_inner.scheduler.get_last_lr() == plain.scheduler.get_last_lr()
    for (name, a), (_, b) in zip(base.named_parameters(), twin.named_parameters()):
        torch.testing.assert_close(a, b, msg=name)
    # 2 warm-up steps, the capture's step and 2 more replayed, the short batch uncaptured
    assert (graphed.uncaptured, graphed.replays) == (3, 3)


def test_graphed_step_hands_out_copies_of_its_outputs():
    model = small_model()
    graphed = GraphedTrainStep(make_step(model), warmup_steps=0, graph_factory=RecordingGraph)
    batch = synthetic_batch(model.cfg, 4)
    first = graphed(*batch)
    kept = first["loss"].clone()
    graphed(*synthetic_batch(model.cfg, 4, seed=1))
    assert torch.equal(first["loss"], kept)  # the next replay did not overwrite it


def test_check_graphable_names_what_stands_in_the_way():
    model = small_model()
    cuda = torch.device("cuda")
    capturable = torch.optim.AdamW(model.parameters(), lr=torch.tensor(1e-3), capturable=True)
    check_graphable(TrainStep(model, capturable), cuda)  # nothing in the way
    cases = [
        (TrainStep(model, capturable), torch.device("cpu"), False, "CUDA device"),
        (TrainStep(model, capturable), cuda, True, "single-process"),
        (TrainStep(model, capturable, grad_accum=2), cuda, False, "grad_accum=1"),
        (TrainStep(model, torch.optim.AdamW(model.parameters())), cuda, False, "capturable=True"),
    ]
    for step, device, distributed, words in cases:
        with pytest.raises(GraphUnsupported, match=words):
            check_graphable(step, device, distributed)


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")
def test_capturable_optimizer_takes_the_schedule_through_its_lr_tensor():
    model = small_model()
    optimizer = build_optimizer(model, 1e-2, 0.0, capturable=True)
    assert all(isinstance(g["lr"], torch.Tensor) and g["capturable"] for g in optimizer.param_groups)
    lr_tensor = optimizer.param_groups[0]["lr"]
    scheduler = build_scheduler(optimizer, warmup_steps=4, total_steps=10, min_ratio=0.1)
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] is lr_tensor  # filled in place: a graph sees the new rate
    assert float(lr_tensor) == pytest.approx(1e-2 * 2 / 4)


@pytest.fixture
def deterministic_cuda():
    """Same kernels, same sums: AdamW turns a near-zero gradient's last-bit difference into a
    whole step of the learning rate, so nondeterministic kernels would hide what is compared."""
    saved = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
             torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
     torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) = saved


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_cuda_graph_step_matches_the_ordinary_step_on_gpu(deterministic_cuda):
    device = torch.device("cuda")
    base = small_model().to(device)
    twin = copy.deepcopy(base)

    def step_for(model):
        optimizer = build_optimizer(model, 1e-2, 0.01, fused=True, capturable=True)
        scheduler = build_scheduler(optimizer, warmup_steps=2, total_steps=10, min_ratio=0.1)
        return TrainStep(model, optimizer, scheduler, precision="fp32", grad_clip=1.0)

    plain = step_for(twin)
    graphed = graph_train_step(step_for(base), device, warmup_steps=2)
    for pixels, ids, mask in batches(base.cfg):
        batch = pixels.to(device), ids.to(device), mask.to(device)
        want, got = plain(*batch), graphed(*batch)
        torch.testing.assert_close(got["loss"], want["loss"], rtol=1e-4, atol=1e-5)
    assert graphed.replays == 3 and graphed.graph is not None
    assert float(graphed.step.optimizer.param_groups[0]["lr"]) == pytest.approx(float(plain.scheduler.get_last_lr()[0]))
    apart = {name: float((a - b).abs().max()) for (name, a), (_, b)
             in zip(base.named_parameters(), twin.named_parameters()) if not torch.allclose(a, b, 1e-4, 1e-5)}
    assert not apart, apart


def test_step_graph_without_a_gpu_is_refused_before_training(tiny_dataset, tmp_path):
    from mmscale.errors import ConfigError
    from mmscale.train import train
    from tests.train.test_loop import tiny_job

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="device=cpu") as err:
        train(tiny_job(tiny_dataset, tmp_path, "train.step_graph=true"))
    assert err.value.field == "train.step_graph"
    assert not (tmp_path / "metrics.jsonl").exists()


class FailingGraph(RecordingGraph):
    def record(self, fn):
        raise RuntimeError("operation not permitted when stream is capturing")


def test_a_failed_capture_is_logged_and_training_goes_on_uncaptured(caplog):
    base = small_model()
    twin = copy.deepcopy(base)
    plain = make_step(twin)
    graphed = GraphedTrainStep(make_step(base), warmup_steps=1, graph_factory=FailingGraph)
    with caplog.at_level("WARNING"):
        for pixels, ids, mask in batches(base.cfg):
            torch.testing.assert_close(graphed(pixels, ids, mask)["loss"], plain(pixels, ids, mask)["loss"])
    assert "capturing the step failed" in caplog.text and "not permitted" in graphed.failed
    assert (graphed.replays, graphed.uncaptured) == (0, 6)
    for (name, a), (_, b) in zip(base.named_parameters(), twin.named_parameters()):
        torch.testing.assert_close(a, b, msg=name)


def test_resume_keeps_the_device_learning_rate_tensor_a_graph_reads(tmp_path):
    from mmscale.train.optim import load_optimizer_state

    model = small_model()
    optimizer = build_optimizer(model, 1e-2, 0.0, capturable=True)
    live = [group["lr"] for group in optimizer.param_groups]
    saved_state = optimizer.state_dict()
    for group in saved_state["param_groups"]:
        group["lr"] = torch.tensor(3e-3)  # as a checkpoint loaded with map_location="cpu" holds it
    torch.save(saved_state, tmp_path / "opt.pt")
    load_optimizer_state(optimizer, torch.load(tmp_path / "opt.pt", weights_only=True))
    for group, lr in zip(optimizer.param_groups, live):
        assert group["lr"] is lr and float(lr) == pytest.approx(3e-3)
