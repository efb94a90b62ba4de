//! Shared test helpers: a task workflow's events and a projection over them, and journals on
//! the OS file system and on the simulated one.

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use annal::{Envelope, Journal, JournalOptions, Projection, TypedEvent};
use annal_storage::{SimStorage, Storage};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Task {
    Created { title: String },
    Started { by: String },
    Completed { by: String, minutes: u32 },
}

impl TypedEvent for Task {
    fn event_type(&self) -> &str {
        match self {
            Task::Created { .. } => "task-created",
            Task::Started { .. } => "task-started",
            Task::Completed { .. } => "task-completed",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskState {
    pub title: String,
    pub status: String,
    pub last_actor: String,
    pub minutes: u64,
    pub version: u64,
}

/// Per task stream: title, status, last actor, minutes worked, version.
pub struct Board;

impl Projection for Board {
    const NAME: &'static str = "board";
    const SCHEMA_VERSION: u32 = 1;
    type Event = Task;
    type State = BTreeMap<String, TaskState>;

    fn apply(state: &mut Self::State, event: &Envelope<'_, Task>) {
        let task = state.entry(event.stream.to_owned()).or_default();
        task.version = event.version;
        match &event.data {
            Task::Created { title } => {
                task.title.clone_from(title);
                task.status = "created".into();
            }
            Task::Started { by } => {
                task.status = "started".into();
                task.last_actor.clone_from(by);
            }
            Task::Completed { by, minutes } => {
                task.status = "completed".into();
                task.last_actor.clone_from(by);
                task.minutes += u64::from(*minutes);
            }
        }
    }
}

/// The same fold, written independently over a plain list: the model.
pub fn model_board(events: &[(String, Task)]) -> BTreeMap<String, TaskState> {
    let mut out: BTreeMap<String, TaskState> = BTreeMap::new();
    let mut versions: BTreeMap<String, u64> = BTreeMap::new();
    for (stream, task) in events {
        let version = versions.entry(stream.clone()).or_insert(0);
        *version += 1;
        let t = out.entry(stream.clone()).or_default();
        t.version = *version;
        let (status, actor, minutes, title) = match task {
            Task::Created { title } => ("created", None, 0, Some(title)),
            Task::Started { by } => ("started", Some(by), 0, None),
            Task::Completed { by, minutes } => ("completed", Some(by), *minutes, None),
        };
        t.status = status.into();
        if let Some(actor) = actor {
            t.last_actor.clone_from(actor);
        }
        if let Some(title) = title {
            t.title.clone_from(title);
        }
        t.minutes += u64::from(minutes);
    }
    out
}

pub struct Place {
    pub storage: Option<Arc<dyn Storage>>,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Place {
    pub fn os() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        Self { storage: None, dir: tmp.path().join("journal"), _tmp: Some(tmp) }
    }

    pub fn sim(seed: u64) -> Self {
        Self {
            storage: Some(Arc::new(SimStorage::new(seed))),
            dir: PathBuf::from("/j"),
            _tmp: None,
        }
    }

    pub fn name(&self) -> &'static str {
        if self.storage.is_some() { "sim" } else { "os" }
    }

    pub fn options(&self) -> JournalOptions {
        let options = Journal::options().segment_bytes(8 * 1024);
        match &self.storage {
            Some(s) => options.storage(Arc::clone(s)),
            None => options,
        }
    }
}

/// A directory reader of the place's journal.
pub fn dir_reader(place: &Place) -> annal::JournalReader {
    match &place.storage {
        Some(s) => annal::JournalReader::open_with(Arc::clone(s), &place.dir),
        None => annal::JournalReader::open(&place.dir),
    }
    .expect("reader")
}

pub fn both(f: impl Fn(&Place)) {
    f(&Place::os());
    f(&Place::sim(3));
}
