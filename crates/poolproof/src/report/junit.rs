//! junit.xml: one test case per SLA; a failure element names the threshold and the measured
//! value. Text is XML-escaped and characters XML 1.0 cannot hold are dropped.

use super::model::RunReport;
use super::xml::escape as xml_escape;
use crate::sla::Verdict;
use std::fmt::Write as _;

pub fn junit_xml(r: &RunReport) -> String {
    let tests = r.slas.len();
    let failures = r.slas.iter().filter(|s| !s.passed()).count();
    let suite = xml_escape(&format!("poolproof.{}", r.scenario));
    let time = r.wall_time_s.unwrap_or(0.0);
    let mut o = String::new();
    o.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(o, "<testsuites name=\"poolproof\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{time:.3}\">");
    let _ = writeln!(
        o,
        "  <testsuite name=\"{suite}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{time:.3}\" timestamp=\"{}\">",
        xml_escape(&r.started_at)
    );
    let _ = writeln!(o, "    <properties>");
    for (k, v) in [
        ("run_id", r.run_id.as_str()),
        ("host", r.host.hostname.as_str()),
        ("poolproof", r.tools.poolproof.as_str()),
    ] {
        let _ = writeln!(
            o,
            "      <property name=\"{k}\" value=\"{}\"/>",
            xml_escape(v)
        );
    }
    let _ = writeln!(o, "    </properties>");
    for s in &r.slas {
        let name = xml_escape(&s.label);
        if s.passed() {
            let _ = writeln!(
                o,
                "    <testcase classname=\"{suite}\" name=\"{name}\" time=\"0\">"
            );
            let _ = writeln!(
                o,
                "      <system-out>{}</system-out>",
                xml_escape(&format!("measured {}; {}", s.measured_text, s.detail))
            );
            let _ = writeln!(o, "    </testcase>");
        } else {
            let kind = match s.verdict {
                Verdict::NoData => "no_data",
                Verdict::NotEvaluated => "not_evaluated",
                Verdict::Inconclusive => "inconclusive",
                _ => "sla_failed",
            };
            let message = format!(
                "{} {}: measured {}, threshold {} {}",
                s.label,
                s.verdict.as_str(),
                s.measured_text,
                s.comparator,
                s.threshold_text
            );
            let _ = writeln!(
                o,
                "    <testcase classname=\"{suite}\" name=\"{name}\" time=\"0\">"
            );
            let _ = writeln!(
                o,
                "      <failure message=\"{}\" type=\"{kind}\">{}</failure>",
                xml_escape(&message),
                xml_escape(&s.detail)
            );
            let _ = writeln!(o, "    </testcase>");
        }
    }
    let _ = writeln!(o, "  </testsuite>\n</testsuites>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_control_characters() {
        assert_eq!(
            xml_escape("a<b & \"c\" 'd'>"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"
        );
        assert_eq!(xml_escape("x\u{1}y\u{0}z\n"), "xyz\n");
    }
}
