"""公民身份号码 checks shared by the gate, the simulator and the generator."""

import pytest
from stdnum.cn import ric

from campusdx.core.idnumbers import check_character, is_valid_ric, normalise, ric_problem


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


def _stdnum_verdict(number):
    try:
        ric.validate(number)
    except ric.ValidationError as exc:
        return exc.message
    except KeyError:
        return "The number's region code is not a known county."
    return None


def test_the_fast_path_answers_exactly_as_stdnum_validate():
    """ric_problem asks stdnum's region lookup once per region code and birth year: on numbers
    of every kind (valid, bad check digit, bad date, unknown or retired region, wrong length,
    letters) it gives stdnum's own verdict and message."""
    import random

    from stdnum import numdb

    rnd = random.Random(7)
    regions = sorted(
        province + county
        for _, province, _, _, counties in numdb.get("cn/loc").prefixes
        for _, county, _, _, _ in counties
    )
    regions = [*rnd.sample(regions, 400), "110300", "999999", "000000"]
    numbers = []
    for region in regions:
        for year in (1949, 1985, 2004, 2030):
            body = f"{region}{year}{rnd.randint(1, 12):02d}{rnd.randint(1, 31):02d}{rnd.randint(0, 999):03d}"
            numbers += [body + check_character(body), body + "0", body[:16] + "A" + "1", body[:15]]
    verdicts = {(n, ric_problem(n)) for n in numbers}
    assert verdicts == {(n, _stdnum_verdict(n)) for n in numbers}
    assert sum(v is None for _, v in verdicts) > 200 and len({v for _, v in verdicts}) >= 5
