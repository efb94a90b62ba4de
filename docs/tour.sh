#!/usr/bin/env bash
# The tour of the `annal` tool that README.md shows, run as printed: `bash docs/tour.sh` from the
# repository (CI runs it on a fresh clone). Everything between the markers is the README's
# block, line for line (a test compares them); the store and files go to a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
trap 'echo "tour: failed at line $LINENO" >&2' ERR
# tour:begin
cargo build --release -q -p annal-cli && export PATH="$PWD/target/release:$PATH"  # or cargo install --path crates/cli
cd "$(mktemp -d)"                                   # a scratch directory for the store
annal init store
annal append store --stream task-1 --type task-created --data '{"title":"docs"}' --actor ada --expect none
cat > events.jsonl <<'JSONL'
{"stream":"task-1","type":"task-started","data":{"status":"started"},"meta":{"actor":"grace"},"expect":1}
{"stream":"task-2","type":"task-created","data":{"title":"bench"},"expect":"none"}
{"stream":"task-1","type":"task-completed","data":{"status":"done"},"expect":2}
JSONL
annal append store --jsonl events.jsonl             # one atomic batch; a bad line appends nothing
annal read store --stream task-1                    # JSON Lines
annal replay store --until 2                        # the `entities` state after event 2
annal replay store --at 2030-01-01T00:00:00Z --projection counts   # the state at a time
annal compact store --keep-snapshots 1 --archive    # snapshots, MANIFEST, segments to archive/
annal checkpoint store > checkpoint.txt             # tree size and root: keep it elsewhere
annal export store --out audit.jsonl                # every record with its leaf hash
annal audit-verify audit.jsonl --checkpoint checkpoint.txt   # exit 3 names the first bad record
annal prove store --seq 2 > proof.json              # event 2 is in the checkpointed tree
annal verify-proof proof.json --checkpoint checkpoint.txt
annal verify store                                  # exit 3 lists every problem
annal info store
# tour:end
echo "tour: every command succeeded in $PWD" >&2
