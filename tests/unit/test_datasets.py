"""Registered datasets: the registry, entry-point discovery and the built-in ``arithmetic``."""

from __future__ import annotations

import sys
import textwrap
import warnings

import pytest

from dotevals.datasets import Dataset, get_dataset, list_datasets, register_dataset, registry
from dotevals.datasets.arithmetic import Arithmetic
from dotevals.errors import ConfigurationError, DatasetError


@pytest.fixture(autouse=True)
def fresh_registry():
    """Each test starts from a registry that has not scanned anything yet."""
    registry._reset()
    yield
    registry._reset()


class Capitals(Dataset):
    """Capital cities."""

    name = "capitals"
    columns = ["country", "capital"]
    splits = ["test"]
    num_rows = 2

    def __init__(self, split: str, upper: bool = False, **kwargs):
        super().__init__(split, **kwargs)
        self.upper = upper

    def __iter__(self):
        for country, capital in [("France", "Paris"), ("Japan", "Tokyo")]:
            yield (country.upper() if self.upper else country, capital)


# Registry --------------------------------------------------------------------
def test_builtin_is_registered_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert get_dataset("arithmetic") is Arithmetic
        assert "arithmetic" in list_datasets()


def test_list_datasets_is_sorted():
    register_dataset(Capitals)
    names = list_datasets()
    assert names == sorted(names)
    assert {"arithmetic", "capitals"} <= set(names)


def test_unknown_dataset_lists_the_available_ones():
    with pytest.raises(DatasetError, match="unknown dataset 'nope'.*'arithmetic'"):
        get_dataset("nope")


def test_unknown_split_names_dataset_and_splits():
    with pytest.raises(DatasetError, match="'arithmetic' has no split 'dev'.*'train', 'test'"):
        Arithmetic("dev")


def test_unknown_option_is_an_error():
    with pytest.raises(DatasetError, match="unknown option.*'limt'"):
        Arithmetic("test", limt=3)


def test_register_dataset_as_decorator():
    @register_dataset
    class Tiny(Dataset):
        name = "tiny"
        columns = ["x"]
        splits = ["all"]

        def __iter__(self):
            yield (1,)

    assert Tiny.__name__ == "Tiny"  # the decorator returns the class
    assert get_dataset("tiny") is Tiny
    assert list(get_dataset("tiny")("all")) == [(1,)]
    assert get_dataset("tiny")("all").num_rows is None


def test_third_party_dataset_with_options():
    register_dataset(Capitals)
    cls = get_dataset("capitals")
    assert list(cls("test")) == [("France", "Paris"), ("Japan", "Tokyo")]
    assert list(cls("test", upper=True))[0] == ("FRANCE", "Paris")
    with pytest.raises(DatasetError, match="no split 'train'"):
        cls("train")


def test_register_rejects_incomplete_classes():
    class NoSplits(Dataset):
        name = "nosplits"
        columns = ["x"]

        def __iter__(self):
            yield (1,)

    with pytest.raises(ConfigurationError, match="does not set splits"):
        register_dataset(NoSplits)
    with pytest.raises(ConfigurationError, match="not a subclass"):
        register_dataset(dict)


def test_registering_the_same_class_again_is_silent():
    register_dataset(Capitals)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        register_dataset(Capitals)


def test_another_class_with_the_same_name_is_refused():
    register_dataset(Capitals)

    class OtherCapitals(Capitals):
        pass

    with pytest.raises(
        ValueError, match=r"'capitals' is already registered with a different class, .*Capitals;"
    ):
        register_dataset(OtherCapitals)
    assert get_dataset("capitals") is Capitals


def test_a_built_in_name_is_taken_before_the_built_in_is_loaded():
    class MyArithmetic(Capitals):
        name = "arithmetic"

    with pytest.raises(ValueError, match=r"'arithmetic' is already registered .*\.Arithmetic;"):
        register_dataset(MyArithmetic)
    assert get_dataset("arithmetic") is Arithmetic


def test_abstract_iter_is_required():
    class NoIter(Dataset):
        name = "noiter"
        columns = ["x"]
        splits = ["all"]

    with pytest.raises(TypeError):
        NoIter("all")


# Built-in arithmetic ---------------------------------------------------------
@pytest.mark.parametrize("split", ["train", "test"])
def test_arithmetic_rows(split):
    dataset = Arithmetic(split)
    rows = list(dataset)
    assert len(rows) == dataset.num_rows == 40
    assert len(set(rows)) == 40
    ops = set()
    for question, answer in rows:
        assert question.startswith("What is ") and question.endswith("?")
        a, op, b = question[len("What is ") : -1].split()
        ops.add(op)
        expected = {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[op]
        assert answer == str(expected)
    assert ops == {"+", "-", "*"}
    assert Arithmetic.columns == ["question", "answer"]


def test_arithmetic_splits_differ():
    train = {q for q, _ in Arithmetic("train")}
    test = {q for q, _ in Arithmetic("test")}
    assert not train & test


# Entry points ----------------------------------------------------------------
def _fake_distribution(tmp_path, monkeypatch, entry_points: str, module: str) -> None:
    """Install ``fakeds`` (a dist-info and a module) on sys.path."""
    dist = tmp_path / "fakeds-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeds\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[dotevals.datasets]\n" + textwrap.dedent(entry_points))
    (tmp_path / "fakeds_module.py").write_text(textwrap.dedent(module))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fakeds_module", raising=False)
    registry._reset()


FAKE_MODULE = """
    from dotevals.datasets import Dataset

    class Colors(Dataset):
        \"\"\"Colors and their hex codes.\"\"\"
        name = "colors"
        columns = ["color", "hex"]
        splits = ["all"]
        num_rows = 2

        def __iter__(self):
            yield ("red", "#ff0000")
            yield ("blue", "#0000ff")

    class Incomplete(Dataset):
        name = "incomplete"

        def __iter__(self):
            yield ()
"""


def test_entry_point_is_discovered(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, monkeypatch, "colors = fakeds_module:Colors\n", FAKE_MODULE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "colors" in list_datasets()
        cls = get_dataset("colors")
    assert cls.__module__ == "fakeds_module"
    assert list(cls("all")) == [("red", "#ff0000"), ("blue", "#0000ff")]
    assert get_dataset("arithmetic") is Arithmetic  # built-ins are still there


def test_entry_points_are_loaded_once_lazily(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, monkeypatch, "colors = fakeds_module:Colors\n", FAKE_MODULE)
    assert "fakeds_module" not in sys.modules  # nothing loaded before the first lookup
    get_dataset("arithmetic")
    module = sys.modules["fakeds_module"]
    del sys.modules["fakeds_module"]
    get_dataset("colors")
    list_datasets()
    assert "fakeds_module" not in sys.modules  # not scanned again
    assert get_dataset("colors").__module__ == module.__name__


def test_broken_entry_point_warns_and_others_still_load(tmp_path, monkeypatch):
    _fake_distribution(
        tmp_path,
        monkeypatch,
        """
        broken = fakeds_missing_module:Nothing
        colors = fakeds_module:Colors
        """,
        FAKE_MODULE,
    )
    with pytest.warns(UserWarning, match="cannot load dataset 'broken'"):
        names = list_datasets()
    assert "colors" in names and "broken" not in names


def test_entry_point_with_incomplete_class_is_skipped(tmp_path, monkeypatch):
    _fake_distribution(
        tmp_path, monkeypatch, "incomplete = fakeds_module:Incomplete\n", FAKE_MODULE
    )
    with pytest.warns(
        UserWarning, match="cannot load dataset 'incomplete' .* does not set columns, splits"
    ):
        names = list_datasets()
    assert "incomplete" not in names


def test_entry_point_cannot_take_a_builtin_name(tmp_path, monkeypatch):
    module = FAKE_MODULE + '\n    class Fake(Colors):\n        name = "arithmetic"\n'
    _fake_distribution(tmp_path, monkeypatch, "arithmetic = fakeds_module:Fake\n", module)
    with pytest.warns(
        UserWarning, match="dataset 'arithmetic' from .* ignored: the name is already taken"
    ):
        assert get_dataset("arithmetic") is Arithmetic
