"""Identifier algorithms: NHS number mod-11, DfE UPN check letter, postcodes."""

from __future__ import annotations

import numpy as np

NHS_WEIGHTS = np.arange(10, 1, -1)  # 10..2 for the first nine digits
UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"  # 23 letters, no I, O, S


def nhs_check_digit(first9: np.ndarray) -> np.ndarray:
    """first9: (n, 9) int array. Returns check digit, 10 meaning 'no valid number'."""
    total = (first9 * NHS_WEIGHTS).sum(axis=1)
    check = 11 - (total % 11)
    check = np.where(check == 11, 0, check)
    return check


def is_valid_nhs(s: str) -> bool:
    if s is None or len(s) != 10 or not s.isdigit():
        return False
    d = np.array([int(c) for c in s])
    c = nhs_check_digit(d[None, :9])[0]
    return c != 10 and c == d[9]


def make_nhs_numbers(rng: np.random.Generator, n: int, first_digit_low=4, first_digit_high=7,
                     part: tuple[int, int] = (0, 1)) -> np.ndarray:
    """n unique valid NHS numbers as 10-char strings; `part` (index, count) takes the index-th of
    count equal slices of the range, so that the parts of a population never share a number."""
    if part[1] > 1:
        width = (first_digit_high - first_digit_low) * 10**8 // part[1]
        low = first_digit_low * 10**8 + part[0] * width
        return _nhs_numbers(rng, n, low, low + width)
    return _nhs_numbers(rng, n, first_digit_low * 10**8, first_digit_high * 10**8)


def _nhs_numbers(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    out: list[np.ndarray] = []
    have = 0
    seen: set = set()
    while have < n:
        m = int((n - have) * 1.2) + 16
        base = rng.integers(low, high, size=m, dtype=np.int64)
        base = np.unique(base)
        rng.shuffle(base)
        digits = (base[:, None] // (10 ** np.arange(8, -1, -1))) % 10
        chk = nhs_check_digit(digits)
        ok = chk != 10
        nums = base[ok] * 10 + chk[ok]
        nums = np.array([x for x in nums if x not in seen], dtype=np.int64)
        seen.update(nums.tolist())
        out.append(nums)
        have += len(nums)
    allnums = np.concatenate(out)[:n]
    return np.char.zfill(allnums.astype(str), 10).astype(object)


def wrong_check_digit(nhs: str, k: int) -> str:
    """Same first nine digits, a different (hence invalid) tenth digit."""
    d = nhs[9]
    new = str((int(d) + 1 + (k % 9)) % 10)
    return nhs[:9] + new


def upn_check_letter(digits12: str) -> str:
    total = sum(int(c) * w for c, w in zip(digits12, range(2, 14)))
    return UPN_LETTERS[total % 23]


def make_upns(rng: np.random.Generator, n: int, la_code: int = 909) -> np.ndarray:
    """UPN: check letter + LA(3) + establishment(4) + year(2) + serial(3)."""
    est = rng.integers(2000, 6000, size=n)
    yr = rng.integers(7, 26, size=n)
    serial = rng.permutation(n) % 1000
    # make unique by construction: combine est/yr/serial and dedupe
    raw = [f"{la_code:03d}{e:04d}{y:02d}{s:03d}" for e, y, s in zip(est, yr, serial)]
    seen: set = set()
    out = []
    bump = 0
    for r in raw:
        while r in seen:
            bump += 1
            r = f"{la_code:03d}{(int(r[3:7]) + bump) % 10000:04d}{r[7:]}"
        seen.add(r)
        out.append(upn_check_letter(r) + r)
    return np.array(out, dtype=object)


def is_valid_upn(s: str) -> bool:
    return (s is not None and len(s) == 13 and s[1:].isdigit() and s[0] == upn_check_letter(s[1:]))
