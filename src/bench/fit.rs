//! Growth of a figure over a benchmark's size: an ordinary least-squares line through the
//! measured points, so a curve reports "MiB per mapping" (or calls, seconds) instead of one
//! point that hides whether it grows linearly.

use serde::Serialize;

/// `y ≈ intercept + slope · x` through the points, and how well it fits.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinearFit {
    /// Growth per unit of x (e.g. MiB per mapping).
    pub slope: f64,
    /// The figure extrapolated to x = 0 (the fixed cost).
    pub intercept: f64,
    /// Coefficient of determination: 1 = the points lie on the line; low = not linear.
    pub r_squared: f64,
    /// Points the line was fitted to.
    pub points: usize,
}

/// Fits a line through `(x, y)` points. `None` with fewer than two distinct x values (a slope
/// needs two sizes). One point of several at the same x is fine: they average.
pub fn linear_fit(points: &[(f64, f64)]) -> Option<LinearFit> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if sxx <= f64::EPSILON {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let slope = sxy / sxx;
    let intercept = mean_y - slope * mean_x;
    let ss_tot: f64 = points.iter().map(|p| (p.1 - mean_y).powi(2)).sum();
    let ss_res: f64 = points
        .iter()
        .map(|p| (p.1 - (intercept + slope * p.0)).powi(2))
        .sum();
    let r_squared = if ss_tot <= f64::EPSILON {
        1.0
    } else {
        1.0 - ss_res / ss_tot
    };
    Some(LinearFit {
        slope,
        intercept,
        r_squared,
        points: points.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn fits_lines_and_refuses_a_single_size() {
        // (points, expected (slope, intercept, r²))
        type Case<'a> = (&'a [(f64, f64)], Option<(f64, f64, f64)>);
        let cases: [Case<'_>; 5] = [
            (&[(1000.0, 30.0), (3000.0, 50.0)], Some((0.01, 20.0, 1.0))),
            (
                &[(1.0, 2.0), (2.0, 4.0), (3.0, 6.0), (4.0, 8.0)],
                Some((2.0, 0.0, 1.0)),
            ),
            // A flat figure: no growth, a perfect (constant) fit.
            (&[(1.0, 5.0), (2.0, 5.0), (3.0, 5.0)], Some((0.0, 5.0, 1.0))),
            (&[(1000.0, 30.0)], None),
            (&[(1000.0, 30.0), (1000.0, 40.0)], None),
        ];
        for (points, want) in cases {
            let got = linear_fit(points);
            match (got, want) {
                (None, None) => {}
                (Some(f), Some((slope, intercept, r2))) => {
                    assert!(close(f.slope, slope), "{points:?}: {f:?}");
                    assert!(close(f.intercept, intercept), "{points:?}: {f:?}");
                    assert!(close(f.r_squared, r2), "{points:?}: {f:?}");
                    assert_eq!(f.points, points.len());
                }
                other => panic!("{points:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_curve_that_bends_fits_worse_than_a_line() {
        let quadratic: Vec<(f64, f64)> = (1..=4).map(|x| (x as f64, (x * x) as f64)).collect();
        let fit = linear_fit(&quadratic).unwrap();
        assert!(fit.r_squared < 0.99 && fit.r_squared > 0.5, "{fit:?}");
        assert!(close(fit.slope, 5.0), "{fit:?}");
    }
}
