//! The self-contained HTML report (`report.html`): inline SVG charts, no JavaScript.

pub mod chart;
