import math

import pytest
from scipy import stats

from functions.stats.distributions import (
    binom_cdf,
    chi2_sf,
    gamma_q,
    kolmogorov_sf,
    ks_pvalue,
    normal_cdf,
    normal_ppf,
    normal_sf,
)


@pytest.mark.parametrize("x", [-6.0, -1.96, -0.3, 0.0, 0.5, 1.6448536, 3.0, 8.0])
def test_normal_against_scipy(x):
    assert normal_cdf(x) == pytest.approx(stats.norm.cdf(x), rel=1e-12, abs=1e-15)
    assert normal_sf(x) == pytest.approx(stats.norm.sf(x), rel=1e-10)


@pytest.mark.parametrize("p", [1e-10, 0.001, 0.025, 0.5, 0.95, 0.975, 1 - 1e-9])
def test_normal_ppf_against_scipy(p):
    assert normal_ppf(p) == pytest.approx(stats.norm.ppf(p), rel=1e-9)


def test_normal_textbook_values():
    assert normal_ppf(0.975) == pytest.approx(1.959964, abs=1e-6)
    assert normal_cdf(1.0) == pytest.approx(0.841345, abs=1e-6)
    with pytest.raises(ValueError):
        normal_ppf(1.0)


@pytest.mark.parametrize("df", [1, 2, 3, 5, 10, 30, 100, 2.5])
@pytest.mark.parametrize("x", [0.001, 0.5, 1.0, 3.84, 10.0, 50.0, 200.0])
def test_chi2_sf_against_scipy(df, x):
    assert chi2_sf(x, df) == pytest.approx(stats.chi2.sf(x, df), rel=1e-8, abs=1e-300)


def test_chi2_textbook_critical_values():
    # tables: 5 % critical values 3.841 (df 1), 5.991 (2), 18.307 (10)
    assert chi2_sf(3.841459, 1) == pytest.approx(0.05, abs=1e-6)
    assert chi2_sf(5.991465, 2) == pytest.approx(0.05, abs=1e-6)
    assert chi2_sf(18.307038, 10) == pytest.approx(0.05, abs=1e-6)
    assert chi2_sf(0.0, 4) == 1.0
    # chi-square with 2 df is exponential: sf = exp(-x/2)
    assert chi2_sf(7.0, 2) == pytest.approx(math.exp(-3.5), rel=1e-12)


def test_gamma_q_rejects_bad_arguments():
    with pytest.raises(ValueError):
        gamma_q(0, 1)
    with pytest.raises(ValueError):
        chi2_sf(1.0, 0)


@pytest.mark.parametrize("x", [0.2, 0.5, 0.8, 0.99, 1.0, 1.36, 1.63, 2.5])
def test_kolmogorov_against_scipy(x):
    assert kolmogorov_sf(x) == pytest.approx(stats.kstwobign.sf(x), rel=1e-8, abs=1e-12)


def test_kolmogorov_textbook_values():
    assert kolmogorov_sf(1.3581) == pytest.approx(0.05, abs=1e-4)
    assert kolmogorov_sf(1.6276) == pytest.approx(0.01, abs=1e-4)


def test_ks_pvalue_close_to_scipy_asymptotic():
    import numpy as np

    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 3000), rng.normal(0.08, 1, 2000)
    res = stats.ks_2samp(a, b, method="asymp")
    assert ks_pvalue(res.statistic, 3000, 2000) == pytest.approx(res.pvalue, rel=0.05)


@pytest.mark.parametrize(("k", "n", "p"), [(0, 10, 0.5), (3, 10, 0.5), (7, 20, 0.3), (40, 100, 0.5), (5, 1000, 0.01)])
def test_binom_cdf_against_scipy(k, n, p):
    assert binom_cdf(k, n, p) == pytest.approx(stats.binom.cdf(k, n, p), rel=1e-10)
