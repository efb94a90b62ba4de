//! The real file system, through std::fs, with memmap2 for sealed segments.

#![expect(unsafe_code, reason = "memory-mapping a sealed segment is unsafe in memmap2's API")]

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::{LockAttempt, LockGuard, LockHolder, OpenMode, Storage, StorageFile};

/// The operating system's file system. Files are created 0600 and directories 0700.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsStorage;

impl OsStorage {
    /// The OS file system.
    #[must_use]
    pub fn new() -> Self {
        Self
    }
}

#[derive(Debug)]
struct OsFile {
    file: File,
}

#[derive(Debug)]
struct OsLock {
    // The locks live as long as these open file descriptions do; the OS drops them if the
    // process dies, so a lock is never stale. The directory's is the one that counts: a file
    // can be unlinked or replaced under its lock, the directory holding the store cannot while
    // the store is in it.
    _dir: Option<File>,
    _file: File,
}

impl LockGuard for OsLock {}

fn options(mode: OpenMode) -> OpenOptions {
    let mut opts = OpenOptions::new();
    match mode {
        OpenMode::Read => {
            opts.read(true);
        }
        OpenMode::ReadWrite => {
            opts.read(true).write(true);
        }
        OpenMode::CreateNew => {
            opts.read(true).write(true).create_new(true);
        }
        OpenMode::CreateTruncate => {
            opts.read(true).write(true).create(true).truncate(true);
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts
}

impl Storage for OsStorage {
    fn create_dir_all(&self, path: &Path) -> io::Result<bool> {
        if path.is_dir() {
            return Ok(false);
        }
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(path)?;
        Ok(true)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn open_file(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>> {
        let file = options(mode).open(path)?;
        Ok(Box::new(OsFile { file }))
    }

    fn map_file(&self, path: &Path) -> io::Result<Bytes> {
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Ok(Bytes::new());
        }
        // SAFETY: only sealed segments are mapped. They are never written again; the log replaces
        // them only by rename (which leaves this mapping's inode intact) and never truncates them
        // in place, so the mapped bytes do not change or shrink while the map is alive.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(Bytes::from_owner(map))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn try_lock(&self, path: &Path, pid: u32) -> io::Result<LockAttempt> {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let dir = File::open(parent)?;
        let held = |path: &Path| {
            // The holder may be rewriting its pid right now, or the file may have been replaced:
            // an unreadable pid is reported as unknown rather than as an error.
            let text = fs::read_to_string(path).unwrap_or_default();
            LockAttempt::Held { pid: text.trim().parse().ok() }
        };
        let dir = match dir.try_lock() {
            Ok(()) => Some(dir),
            Err(TryLockError::WouldBlock) => return Ok(held(path)),
            // A file system that cannot lock a directory (NFS emulates flock with fcntl locks,
            // which need a descriptor open for writing): the file's lock alone, as before.
            Err(TryLockError::Error(_)) => None,
        };
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(path)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)?;
                file.seek(SeekFrom::Start(0))?;
                writeln!(file, "{pid}")?;
                file.sync_data()?;
                Ok(LockAttempt::Acquired(Box::new(OsLock { _dir: dir, _file: file })))
            }
            Err(TryLockError::WouldBlock) => Ok(held(path)),
            Err(TryLockError::Error(err)) => Err(err),
        }
    }

    fn lock_holder(&self, path: &Path) -> io::Result<Option<LockHolder>> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let pid: Option<u32> = text.trim().parse().ok();
        // A pid whose process is gone holds nothing (the OS released its locks): no probe. A
        // live one is probed with a shared lock, released at once, which a writer's exclusive
        // attempt in that instant sees as held (and retries, with a lock timeout).
        #[cfg(target_os = "linux")]
        if let Some(pid) = pid
            && !Path::new("/proc").join(pid.to_string()).exists()
        {
            return Ok(Some(LockHolder { pid: Some(pid), held: false }));
        }
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let probe = |file: &File| match file.try_lock_shared() {
            Ok(()) => Ok(false),
            Err(TryLockError::WouldBlock) => Ok(true),
            Err(TryLockError::Error(e)) => Err(e),
        };
        // The directory first, as `try_lock` takes it; a file system that cannot lock a
        // directory leaves the file's lock alone.
        let held = probe(&File::open(parent)?).unwrap_or(false) || probe(&File::open(path)?)?;
        Ok(Some(LockHolder { pid, held }))
    }

    fn now_nanos(&self) -> u64 {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }
}

impl StorageFile for OsFile {
    #[cfg(target_os = "linux")]
    fn data_end(&self) -> io::Result<u64> {
        use rustix::fs::{SeekFrom, seek};
        let len = self.file.metadata()?.len();
        // The end of the last data extent: from each extent's start to the hole after it. The
        // file offset these seeks move is not used (reads and writes are positional).
        let mut end = 0;
        loop {
            let data = match seek(&self.file, SeekFrom::Data(end)) {
                Ok(at) => at,
                // No data after `end`: the rest is a hole.
                Err(rustix::io::Errno::NXIO) => return Ok(end.min(len)),
                // Holes are not tracked here: all of it is data.
                Err(_) => return Ok(len),
            };
            match seek(&self.file, SeekFrom::Hole(data)) {
                Ok(hole) if hole > end => end = hole,
                _ => return Ok(len),
            }
            if end >= len {
                return Ok(len);
            }
        }
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            self.file.read_at(buf, offset)
        }
        #[cfg(windows)]
        {
            use std::os::windows::fs::FileExt;
            self.file.seek_read(buf, offset)
        }
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            self.file.write_all_at(buf, offset)
        }
        #[cfg(windows)]
        {
            use std::os::windows::fs::FileExt;
            let mut done = 0;
            while done < buf.len() {
                let n = self.file.seek_write(&buf[done..], offset + done as u64)?;
                if n == 0 {
                    return Err(io::Error::from(io::ErrorKind::WriteZero));
                }
                done += n;
            }
            Ok(())
        }
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
}
