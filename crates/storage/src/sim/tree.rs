//! The simulated directory tree: entries, lookups by path, and the errors a lookup gives.

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path};

use super::{Inode, State};

/// The directory id of the root; the root always exists.
pub(super) const ROOT: u64 = 0;

/// A directory entry: a file (inode id) or a directory (directory id); ids are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Node {
    File(u64),
    Dir(u64),
}

#[derive(Debug, Default)]
pub(super) struct Dir {
    pub(super) live: BTreeMap<String, Node>,
    pub(super) durable: BTreeMap<String, Node>,
}

/// The names along `path`, with `.` dropped and `..` applied; the root is the empty list, and
/// relative paths are taken from the root.
pub(super) fn normalize(path: &Path) -> Vec<String> {
    let mut comps = Vec::new();
    for comp in path.components() {
        match comp {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                comps.pop();
            }
            Component::Normal(name) => comps.push(name.to_string_lossy().into_owned()),
        }
    }
    comps
}

pub(super) fn to_usize(value: u64) -> io::Result<usize> {
    usize::try_from(value).map_err(|_| invalid_input("offset or length exceeds the address space"))
}

pub(super) fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

pub(super) fn not_a_directory() -> io::Error {
    io::Error::from(io::ErrorKind::NotADirectory)
}

pub(super) fn is_a_directory() -> io::Error {
    io::Error::from(io::ErrorKind::IsADirectory)
}

pub(super) fn invalid_input(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

impl State {
    pub(super) fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub(super) fn new_dir(&mut self) -> u64 {
        let id = self.new_id();
        self.dirs.insert(id, Dir::default());
        id
    }

    pub(super) fn new_inode(&mut self) -> u64 {
        let id = self.new_id();
        self.inodes.insert(id, Inode::default());
        id
    }

    pub(super) fn dir_mut(&mut self, id: u64) -> &mut Dir {
        self.dirs.get_mut(&id).expect("every entry names an existing directory")
    }

    pub(super) fn inode_mut(&mut self, id: u64) -> &mut Inode {
        self.inodes.get_mut(&id).expect("every entry and handle names an existing inode")
    }

    /// Follows live entries from the root. `Ok(None)` if the last or an intermediate name is
    /// missing.
    pub(super) fn lookup(&self, comps: &[String]) -> io::Result<Option<Node>> {
        let mut node = Node::Dir(ROOT);
        for comp in comps {
            let Node::Dir(dir) = node else { return Err(not_a_directory()) };
            match self.dirs[&dir].live.get(comp) {
                Some(&child) => node = child,
                None => return Ok(None),
            }
        }
        Ok(Some(node))
    }

    /// The directory that must hold the last component of `comps`, and that component.
    pub(super) fn parent<'a>(&self, comps: &'a [String]) -> io::Result<(u64, &'a str)> {
        let (name, parent) = comps.split_last().ok_or_else(|| invalid_input("no file name"))?;
        match self.lookup(parent)? {
            Some(Node::Dir(dir)) => Ok((dir, name)),
            Some(Node::File(_)) => Err(not_a_directory()),
            None => Err(not_found()),
        }
    }

    pub(super) fn file_id(&self, comps: &[String]) -> io::Result<u64> {
        match self.lookup(comps)? {
            Some(Node::File(id)) => Ok(id),
            Some(Node::Dir(_)) => Err(is_a_directory()),
            None => Err(not_found()),
        }
    }

    pub(super) fn dir_id(&self, comps: &[String]) -> io::Result<u64> {
        match self.lookup(comps)? {
            Some(Node::Dir(id)) => Ok(id),
            Some(Node::File(_)) => Err(not_a_directory()),
            None => Err(not_found()),
        }
    }
}
