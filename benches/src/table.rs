//! Number formatting shared by the benchmark binaries' markdown tables.

use std::time::Duration;

/// `n`, rounded, with thousands separators: `1234567.8` is `1,234,568`.
#[must_use]
pub fn thousands(n: f64) -> String {
    let digits = format!("{n:.0}");
    let (sign, digits) = digits.strip_prefix('-').map_or(("", digits.as_str()), |d| ("-", d));
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    format!("{sign}{out}")
}

/// A duration in whole microseconds: `123 µs`.
#[must_use]
pub fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

/// Values joined with commas.
#[must_use]
pub fn list(values: impl IntoIterator<Item = String>) -> String {
    values.into_iter().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators() {
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(thousands(-1000.0), "-1,000");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(micros(Duration::from_micros(42)), "42 µs");
        assert_eq!(list(["a".to_owned(), "b".to_owned()]), "a, b");
    }
}
