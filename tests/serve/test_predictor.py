"""The real predictor (tiny model): batched equals unbatched, bad images fail alone, padding to
buckets (the compiled path's static shapes) changes nothing."""

import pytest
import torch

from mmscale.serve.buckets import bucket_at_most, buckets_up_to, next_bucket
from mmscale.serve.items import Item, RequestError
from tests.serve.conftest import jpeg

TOL = 1e-4  # fp32 on CPU; different batch shapes reorder reductions only


def match_items():
    captions = [["a red cube"], ["two green spheres near a cone", "a cat", "x"], ["a b c d e f g h"] * 2]
    return [Item("match", jpeg(64 + 16 * k, 48, seed=k), c) for k, c in enumerate(captions)]


def close(a, b):
    return torch.allclose(torch.tensor(a), torch.tensor(b), atol=TOL)


def test_batched_equals_unbatched_with_different_caption_counts(tiny_predictor):
    items = match_items()
    together = tiny_predictor.predict("match", items)
    for item, out in zip(items, together):
        (alone,) = tiny_predictor.predict("match", [item])
        assert len(out.itm_prob) == len(item.captions)
        assert close(out.itm_prob, alone.itm_prob) and close(out.itc_similarity, alone.itc_similarity)
        assert all(0.0 <= p <= 1.0 for p in out.itm_prob)
        assert all(-1.0 - 1e-5 <= s <= 1.0 + 1e-5 for s in out.itc_similarity)


def test_scores_match_the_model_called_directly(tiny_predictor):
    from mmscale.data.image import decode_image
    from mmscale.data.normalize import to_model_input

    item = match_items()[1]
    (out,) = tiny_predictor.predict("match", [item])
    model, tok = tiny_predictor.model, tiny_predictor.tokenizer
    pixels = to_model_input(decode_image(item.image_bytes, model.cfg.image_size)[None])
    ids, mask = tok.encode_batch(item.captions, max_len=32)
    with torch.no_grad():
        image_tokens = model.encode_image(pixels).expand(len(ids), -1, -1)
        text_tokens = model.encode_text(ids, mask)
        prob = model.itm_logits(image_tokens, text_tokens, mask).softmax(-1)[:, 1]
        sim = (model.image_embedding(pixels) * model.text_embedding(ids, mask)).sum(-1)
    assert close(out.itm_prob, prob.tolist()) and close(out.itc_similarity, sim.tolist())


def test_embeddings_batched_equal_unbatched_and_are_normalized(tiny_predictor):
    images = [Item("embed_image", jpeg(seed=k)) for k in range(3)]
    texts = [Item("embed_text", captions=c) for c in (["a"], ["b c", "d e f g"])]
    for task, batch in (("embed_image", images), ("embed_text", texts)):
        together = tiny_predictor.predict(task, batch)
        for item, out in zip(batch, together):
            (alone,) = tiny_predictor.predict(task, [item])
            assert close(out.embeddings, alone.embeddings)
            assert close([sum(x * x for x in e) for e in out.embeddings], [1.0] * len(out.embeddings))


def test_a_bad_image_fails_alone(tiny_predictor):
    good = match_items()[0]
    truncated = Item("match", jpeg(seed=9)[:300], ["a"])
    outs = tiny_predictor.predict("match", [truncated, good])
    assert isinstance(outs[0], RequestError) and outs[0].status == 400 and outs[0].code == "bad_image"
    (alone,) = tiny_predictor.predict("match", [good])
    assert close(outs[1].itm_prob, alone.itm_prob)


def test_bucket_padding_does_not_change_scores(tiny_predictor):
    items = match_items()
    plain = tiny_predictor.predict("match", items)
    tiny_predictor.pad_buckets = True
    try:
        padded = tiny_predictor.predict("match", items)
    finally:
        tiny_predictor.pad_buckets = False
    for a, b in zip(plain, padded):
        assert close(a.itm_prob, b.itm_prob) and close(a.itc_similarity, b.itc_similarity)


@pytest.mark.parametrize("n, bucket", [(1, 1), (2, 2), (3, 3), (5, 6), (7, 8), (13, 16), (17, 24), (32, 32), (200, 256)])
def test_next_bucket(n, bucket):
    assert next_bucket(n) == bucket
    assert buckets_up_to(40) == [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48]


@pytest.mark.parametrize("n, bucket", [(1, 1), (5, 4), (47, 32), (48, 48), (69, 64), (95, 64), (96, 96), (255, 192)])
def test_bucket_at_most(n, bucket):
    assert bucket_at_most(n) == bucket and next_bucket(bucket) == bucket


def test_batches_are_cut_to_a_bucket_only_above_the_threshold_and_only_when_padded(tiny_predictor):
    assert tiny_predictor.batch_size_for(69, above=32) == 69  # CPU eager: nothing is padded
    tiny_predictor.pad_buckets = True
    try:
        assert tiny_predictor.batch_size_for(69, above=32) == 64
        assert tiny_predictor.batch_size_for(30, above=32) == 30  # small batches are not cut
        assert tiny_predictor.batch_size_for(96, above=32) == 96  # already a bucket
    finally:
        tiny_predictor.pad_buckets = False


def test_both_stages_of_predict_run_in_inference_mode(tiny_predictor, monkeypatch):
    seen = []
    real = tiny_predictor.prepare_inputs

    def spy(task, items):
        seen.append(torch.is_inference_mode_enabled())
        return real(task, items)

    monkeypatch.setattr(tiny_predictor, "prepare_inputs", spy)
    tiny_predictor.predict("match", match_items()[:1])
    assert seen == [True]


def test_warm_buckets_runs_every_shape(tiny_predictor):
    assert tiny_predictor.warm_buckets(4, 2) == 0  # CPU eager: nothing padded, nothing to warm
    tiny_predictor.pad_buckets = True
    try:
        assert tiny_predictor.warm_buckets(4, 2) == len([1, 2, 3, 4, 6, 8])
    finally:
        tiny_predictor.pad_buckets = False


def test_device_decode_path_matches_cpu_decode_and_falls_back(tiny_predictor):
    """The nvjpeg path's logic (batched decode_jpeg + resize, CPU fallback for non-JPEG and bad
    bytes), run with the batch decoder's CPU build: same pixels within a few grey levels."""
    from mmscale.serve.predictor import ImageBatchDecoder

    size = tiny_predictor.image_size
    blobs = [jpeg(120, 90, seed=1), jpeg(64, 64, seed=2, fmt="PNG"), b"\xff\xd8\xff garbage", jpeg(90, 120, seed=3)]
    device_path = ImageBatchDecoder(size, 10**8, torch.device("cpu"), "gpu")
    cpu_path = ImageBatchDecoder(size, 10**8, torch.device("cpu"), "cpu")
    images, errors = device_path(blobs)
    reference, ref_errors = cpu_path(blobs)
    assert [e is None for e in errors] == [True, True, False, True] == [e is None for e in ref_errors]
    assert errors[2].status == 400 and images.shape == (3, 3, size, size) and images.dtype == torch.uint8
    diff = (images.float() - reference.float()).abs().mean().item()
    assert diff < 8.0  # different resamplers (PIL draft + bilinear vs antialiased interpolate)


def test_device_decode_path_with_torchcodec_applies_the_exif_orientation(tiny_predictor, monkeypatch):
    """A request's JPEG goes to the batch decoder whatever its EXIF says; TorchCodec (unlike
    torchvision) rotates it as the CPU path does. Checked on CPU; nvjpeg's behaviour is not."""
    import mmscale.data.gpu_decode as gd
    from mmscale.serve.predictor import ImageBatchDecoder
    from tests.data.conftest import exif_rotated_jpeg

    pytest.importorskip("torchcodec.decoders")
    monkeypatch.setattr(gd, "jpeg_backend", lambda: "torchcodec")
    size, blob = tiny_predictor.image_size, exif_rotated_jpeg()
    images, _ = ImageBatchDecoder(size, 10**8, torch.device("cpu"), "gpu")([blob])
    reference, _ = ImageBatchDecoder(size, 10**8, torch.device("cpu"), "cpu")([blob])
    assert (images.float() - reference.float()).abs().mean().item() < 8.0
    assert images[0, 0, : size // 4].float().mean() > 200  # red on top once rotated


@pytest.mark.parametrize("task", ["match", "embed_text"])
def test_a_caption_the_tokenizer_refuses_fails_only_its_own_request(tiny_predictor, monkeypatch, task):
    """Whatever the tokenizer cannot take fails its request alone; the rest of the batch scores as alone."""
    real = tiny_predictor.tokenizer.encode_batch

    def picky(texts, **kwargs):
        if any("POISON" in t for t in texts):
            raise ValueError("cannot encode")
        return real(texts, **kwargs)

    items = [Item(task, jpeg(seed=k) if task == "match" else None, [f"caption {k}"]) for k in range(4)]
    items[1] = Item(task, items[1].image_bytes, ["POISON"])
    alone = [tiny_predictor.predict(task, [it])[0] for it in items if "POISON" not in it.captions[0]]
    monkeypatch.setattr(tiny_predictor.tokenizer, "encode_batch", picky)
    batch = tiny_predictor.predict(task, items)
    assert isinstance(batch[1], RequestError) and batch[1].status == 400
    for got, want in zip([batch[0], batch[2], batch[3]], alone):
        field = "itm_prob" if task == "match" else "embeddings"
        assert torch.allclose(torch.tensor(getattr(got, field)), torch.tensor(getattr(want, field)), atol=1e-4)
