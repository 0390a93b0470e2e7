"""The union-find that refuses impossible links, and the allocation of stable ids."""

import numpy as np
import pytest

from orchestration.partnership.linkage.cluster import (
    ConstrainedUnionFind,
    assign_stable_ids,
)

pytestmark = pytest.mark.dbt_free


def test_a_link_joining_two_different_nhs_numbers_is_refused():
    uf = ConstrainedUnionFind(nhs=np.array([0, 1, -1]), upn=np.array([-1, -1, -1]))
    assert uf.union(0, 2, method=4)  # no NHS number on 2: fine
    assert not uf.union(2, 1, method=4)  # 2 now belongs with NHS number 0
    assert uf.refused == 1
    roots = uf.roots()
    assert roots[0] == roots[2] != roots[1]


def test_the_first_rule_that_links_a_record_is_its_method():
    uf = ConstrainedUnionFind(nhs=np.array([-1, -1, -1]), upn=np.array([-1, -1, -1]))
    uf.union(0, 1, method=0)
    uf.union(1, 2, method=4, probability=0.995)
    assert uf.method.tolist() == [0, 0, 4]
    assert np.isnan(uf.probability[0]) and uf.probability[2] == 0.995


def test_groups_keep_the_id_most_of_their_members_had():
    # group 0 = yesterday's A plus one new member; group 1 = a split-off part of A; group 2 new.
    counts = [(0, "LP000000001", 3), (1, "LP000000001", 1), (1, "LP000000002", 1)]
    ids, nxt = assign_stable_ids(3, counts, first_rank=[5, 1, 9], next_number=3, prefix="LP")
    assert ids == ["LP000000001", "LP000000002", "LP000000003"]
    assert nxt == 4


def test_a_retired_id_is_never_handed_out_again():
    ids, nxt = assign_stable_ids(2, [(0, "LP000000007", 2)], first_rank=[0, 1], next_number=9, prefix="LP")
    assert ids == ["LP000000007", "LP000000009"] and nxt == 10
