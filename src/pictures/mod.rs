//! Pictures: a comparison drawn as one self-contained HTML page (`driftd report`, and the
//! daemon's pages), from the profiles alone — so the page is the same size for a thousand rows or a billion.
//!
//! Pure: profiles, the comparison and its invariant findings in, a `String` of HTML out; no
//! I/O, no clock. The charts are SVG written here (`svg`), styled by the page's CSS so they
//! follow the light or dark theme and print; a small inline script sorts and filters the table,
//! and the page reads completely without it. Nothing is fetched: a Content-Security-Policy
//! allows only the inline style and script, by hash.
//!
//! - [`markup`]: escaping of names and values, number formats.
//! - [`svg`]: chart geometry (histograms from quantile sketches, bars of frequent values, null
//!   ratios) and drawing.
//! - [`feature`]: one feature's verdict, table row and card; [`feature::chart`] draws one
//!   feature's chart alone.
//! - [`html`]: the page.
//! - [`daemon`]: `driftd serve`'s pages: the datasets with their verdicts, and one dataset's
//!   comparison (drawn by `html` as the report is), score history, runs and alerts.

pub mod daemon;
pub mod feature;
pub mod html;
pub mod markup;
pub mod svg;

use crate::detect::DriftReport;
use crate::profile::DatasetProfile;

/// What the page shows: both profiles and their comparison (`detect::compare`).
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    pub reference: &'a DatasetProfile,
    pub current: &'a DatasetProfile,
    pub report: &'a DriftReport,
    /// Where each side came from, as shown to the reader: a file name, a run.
    pub reference_source: &'a str,
    pub current_source: &'a str,
    /// When the page was made, already formatted; the renderer reads no clock.
    pub generated_at: Option<&'a str>,
}

/// The whole page as one HTML document.
pub fn render(page: &Page) -> String {
    html::render(page)
}
