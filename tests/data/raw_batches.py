"""Raw batches built in the test's own process, through the loader's dataset and collator."""

from mmscale.data.collate import RawCollator
from mmscale.data.dataset import RawIndexedDataset
from mmscale.data.gpu_raw import RawBatch


class ListIndex:
    """(path, caption) lists with the ``ManifestIndex`` accessors the raw dataset uses."""

    def __init__(self, paths, captions):
        self.paths, self.captions = list(paths), list(captions)

    def __len__(self):
        return len(self.paths)

    def path(self, i):
        return self.paths[i]

    def caption(self, i):
        return self.captions[i]

    def source(self, i):
        return "<list>", i + 1


def read_raw_batch(items, tokenizer, image_size: int, max_image_pixels: int, max_text_len: int) -> RawBatch:
    """(index, path, caption) triples -> ``RawBatch`` in this process, through the loader's own
    ``RawIndexedDataset`` and ``RawCollator``."""
    items = list(items)
    index = ListIndex([p for _, p, _ in items], [c for _, _, c in items])
    dataset = RawIndexedDataset(index, image_size, max_image_pixels)
    samples = []
    for k, (row, _, _) in enumerate(items):
        sample = dataset[k]
        if isinstance(sample, tuple):  # (RawSample, path); BadSample passes through
            sample[0].index = row
        samples.append(sample)
    return RawCollator(tokenizer, max_text_len, image_size)(samples)
