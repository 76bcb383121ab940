//! Output files are written to a temporary file next to the target and renamed into place,
//! so an interrupted run leaves either the old file or the new one, never half a file.
use crate::error::{Error, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub type WriteResult = std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Write `path` atomically: `write` fills a buffered temporary file, which is synced and
/// renamed over `path` only if `write` succeeded.
pub fn write_atomically(path: &Path, write: impl FnOnce(&mut BufWriter<File>) -> WriteResult) -> Result<()> {
    let fail = |e: std::io::Error| Error::Write { path: path.to_path_buf(), source: e };
    let tmp = temporary_sibling(path);
    let result = (|| {
        let file = File::create(&tmp)?;
        let mut out = BufWriter::new(file);
        write(&mut out).map_err(std::io::Error::other)?;
        out.flush()?;
        out.get_ref().sync_all()?;
        drop(out);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(fail)
}

fn temporary_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}-{unique}.part", std::process::id()))
}

/// Read a whole input file, naming it in the error.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Read { path: path.to_path_buf(), source: e })
}
