"""The study file's `question:` section: a table of bad sections, each refused in one line
naming the key, the rule and the value; and what a good one resolves to."""

import pytest
from helpers import VALID, refused, write

from tune.study import load_study

FOLDS = "[[Office_1, Office_2], [Office_3, Office_4]]"


def study(**parts):
    """VALID plus a question whose keys default to a good section."""
    keys = {"parameter": "base_channel_divisor", "values": "[1, 4]", "folds": FOLDS,
            "seeds": "[1, 2]", **parts}
    lines = [f"  {k}: {v}" for k, v in keys.items() if v is not None]
    return VALID + "question:\n" + "\n".join(lines) + "\n"


@pytest.mark.parametrize("parts, key, rule", [
    ({"values": "[1, 4, 8]"}, r"question\.values", "must be two different values"),
    ({"values": "[4, 4]"}, r"question\.values", "must be two different values"),
    ({"values": "[1, 3]"}, r"question\.values\[1\]", r"base_channel_divisor must be one of"),
    ({"parameter": "base_width"}, r"question\.parameter", "unknown TrainConfig key"),
    ({"parameter": "seed"}, r"question\.parameter", "question.seeds sets each run's seed"),
    ({"parameter": None}, r"question\.parameter", "is required"),
    ({"held": "{base_channel_divisor: 2}"}, r"question\.held\.base_channel_divisor",
     "its two values are question.values"),
    ({"held": "{locations: [Office_1]}"}, r"question\.held\.locations",
     "each fold sets the training places"),
    ({"held": "{epochs: 3}"}, r"question\.held\.epochs", "the full budget"),
    ({"held": "{residual_range: -1}"}, r"question\.values\[0\]", "residual_range must be > 0"),
    ({"control": "{model: transformer}"}, r"question\.control", "model must be one of"),
    ({"extra_arms": "{control: {use_adaptive_loss: false}}"}, r"question\.extra_arms\.control",
     "must not reuse the name"),
    ({"folds": "1"}, r"question\.folds", r"`folds >= 2` must hold"),
    ({"folds": "[[Office_1]]"}, r"question\.folds", "a list of >= 2 lists"),
    ({"folds": "[[Office_1], [Office_1]]"}, r"question\.folds\[1\]\[0\]",
     "each place must be in exactly one fold"),
    ({"folds": "[[Office_1], []]"}, r"question\.folds\[1\]", "non-empty list"),
    ({"seeds": "[]"}, r"question\.seeds", "must be a list of 1 to 100 seeds"),
    ({"seeds": "[1, 1]"}, r"question\.seeds\[1\]", "distinct integer"),
    ({"seeds": "[-1]"}, r"question\.seeds\[0\]", "distinct integer"),
    ({"unknown": "1"}, r"question\.unknown", "unknown key"),
    # an arm's name is part of its runs' folder names, as a plain name
    ({"extra_arms": "{'../escaped': {use_adaptive_loss: false}}"}, r"question\.extra_arms",
     "an arm name must be one folder name, without '/'"),
    ({"extra_arms": "{'a\\b': {}}"}, r"question\.extra_arms", "without '/', '\\' or NUL"),
    ({"extra_arms": "{'..': {}}"}, r"question\.extra_arms", "must not start with '.'"),
    ({"extra_arms": "{'': {}}"}, r"question\.extra_arms", "must be a non-empty folder name"),
    ({"extra_arms": '{"a\\tb": {}}'}, r"question\.extra_arms", "use only letters, digits"),
    ({"extra_arms": "{" + "n" * 300 + ": {}}"}, r"question\.extra_arms",
     "must be at most 100 characters long"),
    ({"parameter": "recon_loss", "values": "['../silog', l1]"}, r"question\.values\[0\]",
     "an arm name must be one folder name"),
    ({"parameter": "recon_loss", "values": "[l1, '" + "s" * 300 + "']"},
     r"question\.values\[1\]", "an arm name must be at most 100 characters"),
    # arms are keyed and labelled by the values: single values only, never the control's name
    ({"parameter": "extra", "values": "[{a: 1}, {b: 2}]"}, r"question\.parameter",
     "whose values can name an arm"),
    ({"values": "[[1], [4]]"}, r"question\.values\[0\]", "must be a single value"),
    ({"parameter": "recon_loss", "values": "[control, l1]"}, r"question\.values\[0\]",
     "must not be 'control'"),
    # tune.confirm's fresh seeds follow the largest, and numpy refuses seeds from 2**32 on
    ({"seeds": "[4294967295]"}, r"question\.seeds\[0\]", "distinct integer in [0, 2**31)"),
    ({"seeds": "[1, 2147483648]"}, r"question\.seeds\[1\]", "must stay below 2**32"),
])
def test_bad_questions_are_refused_in_one_line(tmp_path, parts, key, rule):
    message = refused(write(tmp_path, study(**parts)), key)
    assert rule in message, message


def test_a_question_outside_data_locations_is_refused(tmp_path):
    text = study() + "data: {dataset: synthetic, locations: [Office_1, Office_2, Office_3]}\n"
    assert "every place must be one of data.locations" in refused(write(tmp_path, text),
                                                                  r"question\.folds")


def test_a_good_question_resolves_its_arms_and_round_trips(tmp_path):
    text = study(held="{residual_range: 0.3}", control="{model: unet}",
                 extra_arms="{wide_unfrozen: {use_adaptive_loss: false}}")
    spec = load_study(write(tmp_path, text))
    arms = spec.question.arms()
    assert arms[1] == {"residual_range": 0.3, "base_channel_divisor": 1}
    assert arms[4] == {"residual_range": 0.3, "base_channel_divisor": 4}
    assert arms["wide_unfrozen"] == {**arms[1], "use_adaptive_loss": False}
    assert arms["control"] == {"model": "unet"}
    assert spec.question.folds == (("Office_1", "Office_2"), ("Office_3", "Office_4"))
    again = load_study(write(tmp_path, spec.to_yaml(), "resolved.yaml"))
    assert again.question == spec.question
    assert load_study(write(tmp_path, study(folds="2"), "count.yaml")).question.folds == 2


def test_plain_arm_names_string_values_and_the_largest_seed_are_accepted(tmp_path):
    name = "wide-unfrozen_2." + "n" * 84  # 100 characters, the limit
    text = study(parameter="recon_loss", values="[silog, l1]", seeds="[2147483647]",
                 extra_arms=f"{{{name}: {{use_adaptive_loss: true}}}}")
    question = load_study(write(tmp_path, text)).question
    assert list(question.arms()) == ["silog", "l1", name]
    assert question.seeds == (2**31 - 1,)
