//! A tiny disk of the test's own (a tmpfs), for a SQLite database whose disk fills up after
//! start: `fill()` takes every free byte, `free()` gives them back. Mounting needs root (or
//! CAP_SYS_ADMIN): without it the test is skipped, saying so. Dropping the guard unmounts it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct TinyDisk {
    dir: tempfile::TempDir,
    filler: PathBuf,
}

impl TinyDisk {
    /// A tmpfs of `kib` KiB, mounted on a temporary directory; `None` (skip) when mounting is
    /// not allowed.
    pub fn mount(kib: u32) -> Option<TinyDisk> {
        let dir = tempfile::Builder::new()
            .prefix("driftd-disk-")
            .tempdir()
            .unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                eprintln!(
                    "skipping: cannot mount a tmpfs ({})",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                return None;
            }
            Err(e) => {
                eprintln!("skipping: cannot run mount: {e}");
                return None;
            }
        }
        let filler = dir.path().join("filler");
        Some(TinyDisk { dir, filler })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Takes every free byte: writes to the disk fail with ENOSPC from now on.
    pub fn fill(&self) {
        let mut file = std::fs::File::create(&self.filler).unwrap();
        let block = vec![0u8; 4096];
        loop {
            match file.write_all(&block) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        // Also the last bytes a block did not fit in.
        while file.write_all(&[0u8]).is_ok() {}
        let _ = file.sync_all();
    }

    pub fn free(&self) {
        std::fs::remove_file(&self.filler).unwrap();
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        // Lazily: a server under test may still hold its files open.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
