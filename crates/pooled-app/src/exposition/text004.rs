//! The Prometheus text format 0.0.4 form of an OpenMetrics 1.0 exposition.
//!
//! prometheus-client writes OpenMetrics only. Prometheus asks for it (`Accept:
//! application/openmetrics-text`) and gets it; a plain `curl` or `promtool check metrics`
//! (a 0.0.4 linter) gets this form. The formats differ in three ways that matter here: an
//! OpenMetrics counter family `x` has samples `x_total` where 0.0.4 names the family
//! `x_total` itself; OpenMetrics has `# UNIT` lines and ends with `# EOF`, which 0.0.4 lacks;
//! and `unknown` is 0.0.4's `untyped`. Exemplars, `info` and `stateset` families are not
//! produced by this app and are not converted.

/// Content type of the OpenMetrics form.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the 0.0.4 form.
pub const TEXT_004: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether a scraper's `Accept` header asks for OpenMetrics.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// Converts prometheus-client's OpenMetrics text into 0.0.4 text.
pub fn from_openmetrics(om: &str) -> String {
    let mut out = String::with_capacity(om.len());
    // The HELP line of the family whose TYPE line (which decides its name) comes next.
    let mut help: Option<(&str, &str)> = None;
    for line in om.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help = Some((name, text));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (family, kind) = match kind {
                "counter" if !name.ends_with("_total") => (format!("{name}_total"), kind),
                "unknown" => (name.to_owned(), "untyped"),
                _ => (name.to_owned(), kind),
            };
            if let Some((h, text)) = help.take() {
                if h == name {
                    out.push_str("# HELP ");
                    out.push_str(&family);
                    out.push(' ');
                    out.push_str(text);
                    out.push('\n');
                }
            }
            out.push_str("# TYPE ");
            out.push_str(&family);
            out.push(' ');
            out.push_str(kind);
            out.push('\n');
        } else if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_get_their_total_name_and_openmetrics_lines_go() {
        let om = "# HELP db_client_connection_timeouts Timed out.\n\
                  # TYPE db_client_connection_timeouts counter\n\
                  db_client_connection_timeouts_total{db_client_connection_pool_name=\"a\"} 3\n\
                  # HELP http_server_request_duration_seconds Duration.\n\
                  # TYPE http_server_request_duration_seconds histogram\n\
                  # UNIT http_server_request_duration_seconds seconds\n\
                  http_server_request_duration_seconds_sum 0.5\n\
                  http_server_request_duration_seconds_count 1\n\
                  http_server_request_duration_seconds_bucket{le=\"+Inf\"} 1\n\
                  # HELP x_total Already named.\n\
                  # TYPE x_total counter\n\
                  x_total 1\n\
                  # HELP u Unknown.\n\
                  # TYPE u unknown\n\
                  u 1\n\
                  # EOF\n";
        let t = from_openmetrics(om);
        assert_eq!(
            t,
            "# HELP db_client_connection_timeouts_total Timed out.\n\
             # TYPE db_client_connection_timeouts_total counter\n\
             db_client_connection_timeouts_total{db_client_connection_pool_name=\"a\"} 3\n\
             # HELP http_server_request_duration_seconds Duration.\n\
             # TYPE http_server_request_duration_seconds histogram\n\
             http_server_request_duration_seconds_sum 0.5\n\
             http_server_request_duration_seconds_count 1\n\
             http_server_request_duration_seconds_bucket{le=\"+Inf\"} 1\n\
             # HELP x_total Already named.\n\
             # TYPE x_total counter\n\
             x_total 1\n\
             # HELP u Unknown.\n\
             # TYPE u untyped\n\
             u 1\n"
        );
    }

    #[test]
    fn accept_header_decides_the_format() {
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(None));
    }
}
