#!/usr/bin/env bash
# npm run demo: push a repository through kmscrypt:: to a local encrypted store, clone it back,
# check that both are identical, and show that the store holds only ciphertext.
# Everything lives in a temporary directory, including the local keyring.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEMO=$(mktemp -d "${TMPDIR:-/tmp}/kmscrypt-demo-XXXXXX")
export PATH="$ROOT/bin:$PATH"
export KMSCRYPT_KEYRING="$DEMO/keyring.json"
export GIT_AUTHOR_NAME="Demo" GIT_AUTHOR_EMAIL="demo@example.com" GIT_COMMITTER_NAME="Demo" GIT_COMMITTER_EMAIL="demo@example.com"
export GIT_CONFIG_NOSYSTEM=1 HOME="$DEMO/home"
mkdir -p "$HOME"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

[ -f "$ROOT/dist/cli/git-remote-kmscrypt.js" ] || { echo "dist/ is missing: run 'npm ci' (it builds) first" >&2; exit 1; }

step "1. A sample repository: 3 commits, a branch, an annotated tag, a 7 MiB binary"
git init -q -b main "$DEMO/project"
cd "$DEMO/project"
printf '# Demo project\nTop secret roadmap: launch the moon base in Q3.\n' > README.md
git add README.md && git commit -qm "Initial commit: moon base plans"
mkdir -p src && printf 'int launch_code(void) { return 424242; }\n' > src/launch.c
git add src && git commit -qm "Add the launch code"
head -c $((7 * 1024 * 1024)) /dev/urandom > model.bin
git add model.bin && git commit -qm "Add a 7 MiB model (AES-256-CBC + HMAC path)"
git branch feature/secret-branch
git tag -a v1.0 -m "First release"
git log --oneline --all

STORE="$DEMO/store"
step "2. git push to kmscrypt::file://$STORE (a local keyring is created on first use)"
git remote add origin "kmscrypt::file://$STORE"
git push origin --all
git push origin --tags

step "3. git clone it back"
git clone "kmscrypt::file://$STORE" "$DEMO/clone"
cd "$DEMO/clone"
git fetch -q origin 'refs/tags/*:refs/tags/*'
for b in main feature/secret-branch; do git branch -q --track "x-$b" "origin/$b" 2>/dev/null || true; done

step "4. Both repositories are identical"
src_refs=$(git -C "$DEMO/project" for-each-ref --format='%(objectname) %(refname:lstrip=2)' refs/heads refs/tags | sort)
clone_refs=$(git -C "$DEMO/clone" for-each-ref --format='%(objectname) %(refname:lstrip=3)' refs/remotes/origin | grep -v ' HEAD$' | sort)
clone_tags=$(git -C "$DEMO/clone" for-each-ref --format='%(objectname) %(refname:lstrip=2)' refs/tags | sort)
expected_refs=$(printf '%s\n' "$src_refs" | grep -v ' v1\.0$' || true)
if [ "$expected_refs" != "$clone_refs" ] || [ "$(printf '%s\n' "$src_refs" | grep ' v1\.0$')" != "$clone_tags" ]; then
  echo "MISMATCH between pushed and cloned refs" >&2; exit 1
fi
cmp "$DEMO/project/model.bin" "$DEMO/clone/model.bin"
git -C "$DEMO/clone" fsck --strict --no-dangling
printf '%s\n' "$src_refs"
echo "refs, objects and files identical; git fsck --strict is clean"

step "5. What the storage operator sees"
(cd "$STORE" && find . -type f -printf '%10s  %p\n' | sort -k2)
echo
echo "kmscrypt.json (the only plaintext: repository ID, object format, key ID):"
cat "$STORE/kmscrypt.json"
container=$(find "$STORE/containers" -type f | head -1)
echo "first bytes of a container (preamble: magic, container ID, key ID, wrapped data key):"
head -c 96 "$container" | od -A d -t x1 | head -6

step "6. Search the store for anything readable"
leaks=0
needles=("moon base" "launch_code" "424242" "Top secret" "secret-branch" "feature/" "v1.0" "First release" "README.md" "launch.c")
while read -r oid; do needles+=("$oid"); done < <(git -C "$DEMO/project" cat-file --batch-all-objects --batch-check='%(objectname)')
for n in "${needles[@]}"; do
  if grep -rqaF -- "$n" "$STORE"; then echo "FOUND plaintext: $n"; leaks=$((leaks + 1)); fi
done
bin_leaks=$(python3 - "$STORE" "$DEMO/project" <<'PY' 2>/dev/null || echo 0
import os, subprocess, sys
store, repo = sys.argv[1], sys.argv[2]
oids = subprocess.run(['git', '-C', repo, 'cat-file', '--batch-all-objects', '--batch-check=%(objectname)'], capture_output=True, text=True).stdout.split()
data = b''.join(open(os.path.join(d, f), 'rb').read() for d, _, fs in os.walk(store) for f in fs)
print(sum(1 for o in oids if bytes.fromhex(o) in data))
PY
)
echo "searched ${#needles[@]} strings (messages, file contents, ref and file names, every object ID in hex) and every object ID in binary"
if [ "$leaks" != 0 ] || [ "$bin_leaks" != 0 ]; then echo "PLAINTEXT FOUND in the store" >&2; exit 1; fi
echo "nothing found: the store holds only ciphertext"

step "Done"
echo "demo files: $DEMO (keyring: $KMSCRYPT_KEYRING); remove with: rm -rf $DEMO"
