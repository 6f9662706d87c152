//! A plain in-memory reference model of one symbol: every version's rows, and which are deleted.

use crate::Row;

/// The model of a symbol's history.
#[derive(Debug, Clone, Default)]
pub struct SymbolModel {
    /// Rows of every version ever made (index = version id).
    pub versions: Vec<Vec<Row>>,
    /// Whether each version is deleted.
    pub deleted: Vec<bool>,
}

impl SymbolModel {
    /// The newest live version.
    pub fn latest(&self) -> Option<usize> {
        (0..self.versions.len()).rev().find(|&v| !self.deleted[v])
    }

    fn push(&mut self, rows: Vec<Row>) -> usize {
        self.versions.push(rows);
        self.deleted.push(false);
        self.versions.len() - 1
    }

    /// A write.
    pub fn write(&mut self, rows: Vec<Row>) -> usize {
        self.push(rows)
    }

    /// An append (onto the newest live version, or a fresh table).
    pub fn append(&mut self, rows: &[Row]) -> usize {
        let mut base = self.latest().map(|v| self.versions[v].clone()).unwrap_or_default();
        base.extend_from_slice(rows);
        self.push(base)
    }

    /// An update of `[lo, hi]` with `rows`.
    pub fn update(&mut self, rows: &[Row], lo: i64, hi: i64) -> usize {
        let base = self.latest().map(|v| self.versions[v].clone()).unwrap_or_default();
        let mut out: Vec<Row> = base.iter().filter(|r| r.ts < lo).cloned().collect();
        out.extend_from_slice(rows);
        out.extend(base.iter().filter(|r| r.ts > hi).cloned());
        self.push(out)
    }

    /// Deletes every version.
    pub fn delete_all(&mut self) {
        self.deleted.iter_mut().for_each(|d| *d = true);
    }

    /// Deletes all but the newest live version.
    pub fn prune(&mut self) {
        if let Some(l) = self.latest() {
            (0..l).for_each(|v| self.deleted[v] = true);
        }
    }
}
