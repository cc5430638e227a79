"""Training's data path on manifests with bad text: counted skips by reason, never a traceback."""

from mmscale.config.load import load_config
from mmscale.train import TrainJob, train
from tests.train.conftest import TINY_OVERRIDES


def test_bad_text_rows_are_counted_skips_and_the_bom_row_trains(tiny_dataset, tmp_path):
    good = (tiny_dataset / "train.jsonl").read_bytes().splitlines()[:16]
    bad = [b'{"image": "train_0000.png", "caption": "lone \\udfff"}',
           b'{"image": "train_0000.png\\u0000", "caption": "NUL in the path"}',
           b'{"image": "train_0000.png", "caption": "not \xc3\x28 UTF-8"}']
    manifest = tiny_dataset / "bad_text.jsonl"
    manifest.write_bytes(b"\xef\xbb\xbf" + b"\n".join(good[:1] + bad + good[1:]) + b"\n")
    job = load_config(TrainJob, preset="tiny", overrides=TINY_OVERRIDES + [
        f"data.path={manifest}", f"train.out_dir={tmp_path}", "data.shuffle=false", "train.steps=2"])
    result = train(job)
    assert result.steps == 2 and result.samples == 16  # the first row, after the mark, is among them
    assert result.skip_reasons == {"bad_text": 3} and result.skipped_manifest_rows == 3


def test_a_tokenizer_larger_than_the_embedding_table_is_refused(tmp_path):
    import pytest

    from mmscale.data.tokenizer import bundled_tokenizer_dir
    from mmscale.errors import ConfigError
    from mmscale.model.config import VOCAB_SIZE
    from mmscale.train.data import load_job_tokenizer

    vocab = (bundled_tokenizer_dir() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert len(vocab) == VOCAB_SIZE
    (tmp_path / "vocab.txt").write_text("\n".join(vocab + ["[EXTRA]"]) + "\n", encoding="utf-8")
    job = load_config(TrainJob, preset="tiny", overrides=[f"data.tokenizer={tmp_path}"])
    with pytest.raises(ConfigError, match=f"embedding table holds {VOCAB_SIZE}") as err:
        load_job_tokenizer(job)
    assert err.value.field == "data.tokenizer"
