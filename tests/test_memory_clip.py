"""CLIP through ONNX Runtime: a small CLIP-shaped model built here, and real weights where present.

The built model has CLIP's interface (``pixel_values`` → ``image_embeds``;
``input_ids``, ``attention_mask`` → ``text_embeds``; a ``tokenizer.json``) and a
vision tower made of a patch convolution, a flatten and a projection, a text tower
made of an embedding gather, a masked mean and a projection. Its weights are set
so that a colour word and a picture of that colour land on the same vector: text
and images share one space, as in CLIP, in a way the test can predict.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from heron.agent.config import MemoryConfig
from heron.memory.clip import CLIP_MEAN, CLIP_STD, ClipModel, clip_files_in, find_clip_model
from heron.memory.setup import choose_embedders
from heron.memory.store import MemoryStore

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

DIM = 16
SIZE = 64
COLOURS = {  # RGB
    "red": (230, 20, 20),
    "green": (20, 200, 40),
    "blue": (30, 40, 220),
    "yellow": (240, 230, 30),
    "white": (250, 250, 250),
    "black": (5, 5, 5),
}
VOCAB = ["[PAD]", "[UNK]", *COLOURS]


def _image_target(rgb: tuple[int, int, int], mix: np.ndarray) -> np.ndarray:
    """What the built vision tower returns for a plain picture of this colour."""
    pixel = (np.array(rgb, np.float32) / 255.0 - np.array(CLIP_MEAN)) / np.array(CLIP_STD)
    return (pixel @ mix).astype(np.float32)


def build_tiny_clip(folder: Path, *, layout: str = "flat", seed: int = 0) -> Path:
    """Write a CLIP-shaped ONNX pair, tokenizer.json and preprocessor_config.json."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(3, DIM)).astype(np.float32)
    patch, grid = 16, SIZE // 16

    # vision: per-patch mean colour (conv), flatten, projection = mean colour @ mix
    conv = np.zeros((3, 3, patch, patch), np.float32)
    for c in range(3):
        conv[c, c] = 1.0 / (patch * patch)
    proj = np.repeat(mix, grid * grid, axis=0) / (grid * grid)  # rows c*49+p → mix[c]
    vision = helper.make_graph(
        [
            helper.make_node("Conv", ["pixel_values", "conv_w"], ["patches"], strides=[patch] * 2),
            helper.make_node("Flatten", ["patches"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "proj"], ["image_embeds"]),
        ],
        "vision",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["n", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["n", DIM])],
        [numpy_helper.from_array(conv, "conv_w"), numpy_helper.from_array(proj, "proj")],
    )

    # text: embedding gather, mean over the attention mask, projection
    rotation, _ = np.linalg.qr(rng.normal(size=(DIM, DIM)))
    rotation = rotation.astype(np.float32)
    table = np.zeros((len(VOCAB), DIM), np.float32)
    for index, word in enumerate(VOCAB):
        if word in COLOURS:
            table[index] = _image_target(COLOURS[word], mix) @ rotation.T
    text = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "input_ids"], ["tokens"]),
            helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["maskf", "axis2"], ["mask3"]),
            helper.make_node("Mul", ["tokens", "mask3"], ["kept"]),
            helper.make_node("ReduceSum", ["kept", "axis1"], ["total"], keepdims=0),
            helper.make_node("ReduceSum", ["mask3", "axis1"], ["count"], keepdims=0),
            helper.make_node("Div", ["total", "count"], ["mean"]),
            helper.make_node("MatMul", ["mean", "rotation"], ["text_embeds"]),
        ],
        "text",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["n", "l"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["n", "l"]),
        ],
        [helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT, ["n", DIM])],
        [
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(rotation, "rotation"),
            numpy_helper.from_array(np.array([2], np.int64), "axis2"),
            numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        ],
    )
    onnx_dir = folder / "onnx" if layout == "hub" else folder
    onnx_dir.mkdir(parents=True, exist_ok=True)
    for graph, name in ((vision, "vision_model.onnx"), (text, "text_model.onnx")):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        onnx.save(model, onnx_dir / name)

    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "crop_size": {"height": SIZE, "width": SIZE},
                "image_mean": list(CLIP_MEAN),
                "image_std": list(CLIP_STD),
            }
        )
    )
    return folder


def plain(rgb: tuple[int, int, int], h: int = 48, w: int = 80) -> np.ndarray:
    image = np.empty((h, w, 3), np.uint8)
    image[:] = rgb[::-1]  # BGR
    return image


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


def test_the_built_model_is_found_in_a_folder_and_in_a_hub_layout(
    tiny_clip: Path, tmp_path: Path
) -> None:
    found = find_clip_model(str(tiny_clip))
    assert not isinstance(found, str), found
    assert found.vision.name == "vision_model.onnx" and found.preprocessor is not None
    hub = build_tiny_clip(tmp_path / "hub", layout="hub")
    files = clip_files_in(hub)
    assert files is not None and files.vision.parent.name == "onnx"
    missing = find_clip_model(str(tmp_path / "nowhere"))
    assert isinstance(missing, str) and "does not exist" in missing
    (tmp_path / "empty").mkdir()
    assert "lacks" in str(find_clip_model(str(tmp_path / "empty")))


def test_shapes_normalisation_and_batching(tiny_clip: Path) -> None:
    files = find_clip_model(str(tiny_clip))
    assert not isinstance(files, str)
    model = ClipModel(files, name="tiny", batch_size=2)
    sizes = [(48, 80), (120, 60), (64, 64), (33, 200), (300, 301)]
    images = [plain(rgb, h, w) for rgb, (h, w) in zip(COLOURS.values(), sizes, strict=False)]
    vectors = model.embed_images(images)
    assert vectors.shape == (5, DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    calls = model.model_calls
    one_by_one = np.concatenate([model.embed_images([image]) for image in images])
    assert model.model_calls - calls == 5
    np.testing.assert_allclose(vectors, one_by_one, atol=1e-5)
    texts = model.embed_texts(["red", "a green thing", "blue", "something yellow here", "white"])
    assert texts.shape == (5, DIM)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    # padding in a batch does not change a text's vector
    np.testing.assert_allclose(texts[1], model.embed_texts(["a green thing"])[0], atol=1e-5)


def test_text_and_images_share_one_space(tiny_clip: Path) -> None:
    files = find_clip_model(str(tiny_clip))
    assert not isinstance(files, str)
    model = ClipModel(files, name="tiny")
    names = list(COLOURS)
    images = model.embed_images([plain(COLOURS[n]) for n in names])
    texts = model.embed_texts([f"a {n} picture" for n in names])
    similarity = texts @ images.T
    assert [names[i] for i in similarity.argmax(axis=1)] == names
    assert np.all(np.diag(similarity) > 0.99)


def test_memory_uses_clip_from_a_folder_and_never_embeds_a_frame_twice(
    tiny_clip: Path, tmp_path: Path
) -> None:
    embedders = choose_embedders(MemoryConfig(model=str(tiny_clip)))
    assert embedders.notice is None
    assert embedders.image.space == embedders.text.space
    store = MemoryStore(tmp_path, image_embedder=embedders.image, text_embedder=embedders.text)
    from heron.memory.records import FrameInput

    model = embedders.image.model  # type: ignore[attr-defined]
    store.remember_frames([FrameInput(plain(COLOURS[n]), source=n) for n in ("red", "blue")])
    calls = model.model_calls
    again = store.remember_frames([FrameInput(plain(COLOURS["red"]))])
    assert model.model_calls == calls, "the same frame was embedded again"
    assert not again[0].stored and again[0].duplicate_of is not None
    (hit, *_) = store.recall_text("red")
    assert hit.source == "red" and hit.kind == "frame"
    assert store.frames.metadata["embedder"] == embedders.image.name
    assert store.frames.metadata["dim"] == DIM
    store.close()


def test_real_clip_finds_the_cat_among_scikit_image_photos(tmp_path: Path) -> None:
    found = find_clip_model("Xenova/clip-vit-base-patch32")
    if isinstance(found, str):
        pytest.skip(f"real CLIP weights are not present here: {found}")
    from skimage import data

    names = ["astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "hubble_deep_field"]
    photos = []
    for name in names:
        image = getattr(data, name)()
        photos.append(
            cv2.cvtColor(image, cv2.COLOR_RGB2BGR if image.ndim == 3 else cv2.COLOR_GRAY2BGR)
        )
    model = ClipModel(found, name="clip-vit-base-patch32")
    images = model.embed_images(photos)
    texts = model.embed_texts(["a photo of a cat", "a cup of coffee", "a rocket on a launch pad"])
    best = [names[i] for i in (texts @ images.T).argmax(axis=1)]
    assert best == ["chelsea", "coffee", "rocket"]
