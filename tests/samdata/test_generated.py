"""Generated datasets: drawn-shape and Fashion-MNIST scenes with their instance masks and eval sets."""

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from samdata.fashion_items import CLASSES as FASHION_CLASSES
from samdata.fashion_items import FashionItems
from samdata.image_files import list_images
from samdata.synthetic import SHAPES, SyntheticConfig, generate, render_scene
from selfsup.data.evalsets import build_eval_set, eval_transform
from tests.conftest import TINY


def test_synthetic_dataset_is_ordinary_files_and_deterministic(synthetic, tmp_path):
    images = list_images(synthetic.images)
    assert len(images) == TINY.scenes
    assert list_images(synthetic.masks) == images
    again = generate(tmp_path / "again", TINY)
    for rel in images[:5]:
        assert np.array_equal(np.asarray(Image.open(synthetic.images / rel)), np.asarray(Image.open(again.images / rel)))
    classes = sorted(p.name for p in (synthetic.eval / "train").iterdir())
    assert classes == sorted(SHAPES[: TINY.num_classes])
    assert len(list_images(synthetic.eval / "val")) == TINY.eval_val_per_class * TINY.num_classes



def test_synthetic_instance_masks_match_the_objects():
    image, ids, classes = render_scene(TINY, 3)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert sorted(np.unique(ids)[1:].tolist()) == list(range(1, len(classes) + 1))
    assert all(0 <= c < TINY.num_classes for c in classes)



def test_fashion_photos_of_scenes_bank_and_queries_are_disjoint(fashion_root):
    items = FashionItems(fashion_root)
    rng = np.random.default_rng(0)
    for label in range(10):
        scene = {int(items.pick(rng, label, "scene")[0, 0]) for _ in range(30)}
        bank = {int(items.pick(rng, label, "train")[0, 0]) for _ in range(30)}
        queries = [items.pick(rng, label, "val") for _ in range(10)]
        assert scene and all(i % 2 == 0 and (i // 2) % 10 == label for i in scene)
        assert bank and all(i % 2 == 1 and (i // 2) % 10 == label for i in bank)
        assert all(int(q[0, 0]) < 40 and (int(q[0, 0]) // 2) % 10 == label for q in queries)  # test split



def test_fashion_scenes_have_one_instance_mask_per_pasted_photo(fashion_root, tmp_path):
    config = SyntheticConfig(items="fashion-mnist", items_root=str(fashion_root), num_classes=10, scenes=6, scene_size=64,
                             object_size=(24, 34), objects_per_scene=(2, 3), eval_size=32, eval_train_per_class=2,
                             eval_val_per_class=1, clutter=5)
    paths = generate(tmp_path / "fs", config)
    for i in range(6):
        image, ids, classes = render_scene(config, i)
        assert sorted(np.unique(ids)[1:].tolist()) == list(range(1, len(classes) + 1))
        for k, label in enumerate(classes, start=1):
            # fashion_root's photo of class L is a (9 + 2L) x (25 - 2(L // 2)) blob: the mask of the
            # pasted photo has that height/width (not the square photo's 1), whatever its pasted size.
            # The bilinear resize to 24-34 px moves each edge by up to a pixel, which can make the
            # nearest class a neighbour of the true one (measured: 0 or 1 class away on 200 scenes).
            components, _ = ndimage.label(ids == k)
            blob = components == np.bincount(components.ravel())[1:].argmax() + 1  # not pixel [0, 0]'s index
            height, width = blob.any(axis=1).sum(), blob.any(axis=0).sum()
            nearest = int(np.argmin([abs(height / width - (9 + 2 * c) / (25 - 2 * (c // 2))) for c in range(10)]))
            assert abs(nearest - label) <= 1, (i, k, label, height, width)
        assert np.array_equal(np.asarray(Image.open(paths.masks / f"{i:05d}.png")), ids)
    assert sorted(p.name for p in (paths.eval / "val").iterdir()) == sorted(FASHION_CLASSES)
    evalset = build_eval_set("folder", paths.eval)
    assert evalset.num_classes == 10 and len(evalset.make("train", eval_transform(32))) == 20



def test_missing_fashion_files_name_the_prepare_command(tmp_path):
    config = SyntheticConfig(items="fashion-mnist", items_root=str(tmp_path / "nothing"), scenes=2)
    with pytest.raises(FileNotFoundError, match="samdata prepare fashion-mnist"):
        generate(tmp_path / "fs", config)
    with pytest.raises(ValueError, match="items_root"):
        SyntheticConfig(items="fashion-mnist")



def test_grey_background_leaves_colour_only_on_the_objects():
    """background_saturation 0: every background pixel is grey (up to the added noise), the objects
    keep their colours, and the layout is the same scene as the coloured one (same random draws)."""
    coloured, ids, classes = render_scene(SyntheticConfig(scene_size=96, object_size=(36, 60), clutter=20), 3)
    grey, ids_grey, classes_grey = render_scene(SyntheticConfig(scene_size=96, object_size=(36, 60), clutter=20, background_saturation=0.0), 3)
    assert np.array_equal(ids, ids_grey) and classes == classes_grey
    chroma = lambda img: img.astype(np.float32).max(-1) - img.astype(np.float32).min(-1)  # noqa: E731
    background = ids == 0
    assert np.median(chroma(grey)[background]) < 20 < np.median(chroma(coloured)[background])
    assert np.array_equal(grey[~background], coloured[~background])
    with pytest.raises(ValueError, match="background_saturation"):
        SyntheticConfig(background_saturation=1.5)
