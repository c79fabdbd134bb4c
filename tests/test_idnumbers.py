"""公民身份号码 checks shared by the gate, the simulator and the generator."""

import pytest
from stdnum.cn import ric

from campusdx.idnumbers import check_character, is_valid_ric, normalise, ric_problem


@pytest.mark.parametrize("number", ["11010519491231002X", "360426199101010071"])
def test_reference_vectors_are_valid(number):
    assert is_valid_ric(number)


def test_wrong_check_digit_is_invalid():
    assert not is_valid_ric("110105194912310021")
    assert "check digit" in ric_problem("110105194912310021")


def test_prefecture_only_region_is_invalid_not_an_error():
    # stdnum 2.2 raises KeyError here instead of answering False; we must answer False.
    number = "11030019900101001X"
    with pytest.raises(KeyError):
        ric.is_valid(number)
    assert not is_valid_ric(number)


def test_normalise_full_width_lower_x_and_blanks():
    assert normalise(" １１０１０５１９４９１２３１００２ｘ ") == "11010519491231002X"
    assert normalise("   ") is None and normalise(None) is None


def test_check_character_matches_the_standard():
    assert check_character("11010519491231002") == "X"
    assert check_character("36042619910101007") == "1"
