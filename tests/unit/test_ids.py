import time

from shared.domain.ids import is_musical_id, musical_id_of, new_musical_id, new_reservation_id


def test_a_reservation_id_resolves_to_its_musical() -> None:
    musical_id = new_musical_id()
    assert is_musical_id(musical_id)
    assert musical_id_of(new_reservation_id(musical_id)) == musical_id


def test_reservation_ids_issued_before_the_time_ordered_suffix_still_resolve() -> None:
    musical_id = new_musical_id()
    assert musical_id_of(f"{musical_id}-0123456789abcdef") == musical_id


def test_a_reservation_id_fits_a_payment_gateways_order_id() -> None:
    assert len(new_reservation_id(new_musical_id())) <= 64


def test_reservation_ids_sort_by_the_time_they_were_issued() -> None:
    musical_id = new_musical_id()
    earlier = new_reservation_id(musical_id)
    time.sleep(0.002)
    later = [new_reservation_id(musical_id) for _ in range(50)]
    assert all(earlier < later_id for later_id in later)
    assert len(set(later)) == 50  # the same millisecond: told apart by their random bits


def test_what_is_not_a_reservation_id_names_no_musical() -> None:
    musical_id = new_musical_id()
    for value in (musical_id, f"{musical_id}-xyz", f"{musical_id}-{'0' * 20}", "", "../etc"):
        assert musical_id_of(value) is None
