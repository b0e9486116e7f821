#!/usr/bin/env bash
# make demo: the example ML pipeline (layouts/ml-pipeline.yaml) end to end, then four attacks.
#
#   1. throw-away keys in demo-out/keys (never committed): the layout owner, and one per
#      functionary (validator, trainer-a, trainer-b, evaluator, and platform: the training
#      service's ECDSA key, which signs the model);
#   2. the owner checks and signs the layout (root.layout);
#   3. the pipeline runs: every step in its own sandboxed workspace, signed by its own key,
#      train twice (threshold 2), the model signed by the runner itself with platform's key
#      (no command sees it), then the whole chain is verified;
#   4. verification of the delivered result: PASS;
#   5. four attacks, each of which verification must catch, with its code;
#   6. the release through an OCI registry (registry_section, at the end of this file): the
#      pipeline's products signed as one model (OpenSSF Model Signing, platform's key), pushed
#      with the pipeline's layout and links to a registry the demo starts, pulled through the
#      gate (signature, layout, scan), then a blob corrupted in the registry's storage and the
#      pull refused with nothing written.
# Exit status 0 only if the honest run passes, every attack is caught and the gate holds.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/demo-out
KEYS=$OUT/keys
K=demo-out/keys   # the same, as shown in the commands below
LAYOUT_YAML=layouts/ml-pipeline.yaml
start_ns=$(date +%s%N)

rm -rf "$OUT"
mkdir -p "$OUT/bin" "$KEYS"
# `intoto` on PATH for the demo and for the scan-model inspection (which runs in the sandbox).
ln -s "$ROOT/dist/bin/intoto.js" "$OUT/bin/intoto"
export PATH="$OUT/bin:$PATH"

SANDBOX=auto

section() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

section "1. Throw-away keys: the layout owner, and one key per functionary"
show_key() { # NAME: the key type and the start of its public part
  printf '   %-10s %s\n' "$1" "$(node -e 'const k=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); const p=k.keyval.public.replace(/-----[A-Z ]+-----|\s/g,""); process.stdout.write(k.keytype.padEnd(8)+p.slice(-16)+"...")' "$KEYS/$1.pub")"
}
for name in owner validator trainer-a trainer-b evaluator; do
  intoto keygen -q "$KEYS/$name"
  show_key "$name"
done
# The training service's key signs the model (OpenSSF Model Signing allows only ECDSA).
intoto keygen -q -t ecdsa "$KEYS/platform"
show_key platform

section "2. The owner checks and signs the layout (the owner key never reaches a step)"
run intoto layout check "$LAYOUT_YAML" --pubkey-dir "$K" -k "$K/owner.pub"
run intoto layout sign "$LAYOUT_YAML" -k "$K/owner" --pubkey-dir "$K" -o demo-out/root.layout

section "3. Run the pipeline: validate -> train (x2, two keys) -> sign (the runner, platform's key) -> evaluate, then verify the chain"
if ! run intoto pipeline run "$LAYOUT_YAML" --keys "$K" --pubkey-dir "$K" --sandbox "$SANDBOX" \
  --layout demo-out/root.layout --layout-key "$K/owner.pub" --workspace demo-out/work --out demo-out/honest; then
  echo "   DEMO FAILED: the honest pipeline did not pass"
  exit 1
fi

# verify DIR: runs intoto verify in DIR (layout, links and final products); prints one line,
# sets CODE to PASS or the failure code.
verify() {
  local json
  json=$(cd "$1" && intoto verify -l root.layout -k "$KEYS/owner.pub" --sandbox "$SANDBOX" --json 2>/dev/null) || true
  CODE=$(node -e '
    const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
    process.stdout.write(r.passed ? "PASS" : r.failure.code);' <<<"$json")
  local message
  message=$(node -e '
    const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const m = (r.passed ? "every signature, threshold, rule and inspection checks out" : r.failure.message).replace(/-----BEGIN PUBLIC KEY-----[^"]*-----END PUBLIC KEY-----(\\n)?/g, "<platform public key>");
    process.stdout.write(m.length > 360 ? m.slice(0, 150) + " ... " + m.slice(-205) : m);' <<<"$json")
  MESSAGE=$message
  printf '   verify %s: %s: %s\n' "${1#"$OUT"/}" "$CODE" "$message"
}

section "4. Verify what was delivered (demo-out/honest: root.layout, links, model.pkl, model.pkl.sig, metrics.json)"
verify "$OUT/honest"
honest=$CODE
caught=0

attack() { # NAME EXPECTED_CODE [WHO: the check that must name it]
  if [[ $CODE == "$2" && ( -z ${3:-} || $MESSAGE == *"$3"* ) ]]; then
    printf '   CAUGHT (%s)\n' "$2"
    caught=$((caught + 1))
  else
    printf '   NOT CAUGHT as expected: got %s, wanted %s%s\n' "$CODE" "$2" "${3:+ from $3}"
  fi
}

section "5a. Attack: the dataset is changed after validation (a row relabelled), train re-run on it"
cp -r "$OUT/honest" "$OUT/attack-a"
rm "$OUT"/attack-a/train.*.link
for trainer in trainer-a trainer-b; do
  work=$OUT/attack-a-work/$trainer
  mkdir -p "$work/data" "$work/steps"
  cp "$OUT/work/runs/train/$trainer/data/flowers.csv" "$work/data/"
  cp "$OUT/work/runs/train/$trainer/steps/train.py" "$work/steps/"
  sed -i '2s/,[a-z]*$/,setosa/' "$work/data/flowers.csv"   # poison one label
  # The trainers are honest and sign what they ran on: the poisoned data.
  (cd "$work" && intoto run -q -n train -k "$KEYS/$trainer" -m . -p . -d "$OUT/attack-a" --sandbox "$SANDBOX" \
    -- /usr/bin/python3 steps/train.py data/flowers.csv --out model.pkl --seed 7)
done
cp "$OUT/attack-a-work/trainer-a/model.pkl" "$OUT/attack-a/model.pkl"
verify "$OUT/attack-a"
attack a E_RULE_DISALLOW

section "5b. Attack: model.pkl replaced by a real scikit-learn model carrying a payload (steps/make_malicious_pickle.py)"
cp -r "$OUT/honest" "$OUT/attack-b"
/usr/bin/python3 steps/make_malicious_pickle.py layouts/ml/data/flowers.csv "$OUT/attack-b/model.pkl"   # written, never loaded
verify "$OUT/attack-b"
attack b E_INSPECTION_FAILED
printf '   caught first by the scan-model inspection; what it saw:\n'
(cd "$OUT/attack-b" && intoto scan-model -q model.pkl | sed 's/^/     /') || true
printf '   and the artifact rules would have caught it next (the train links recorded another model.pkl):\n'
(cd "$OUT/attack-b" && intoto match-products -l "$(ls train.*.link | head -n 1)" -p model.pkl 2>&1 |
  grep -A2 'differs: model.pkl' | sed 's/^/     /') || true

section "5c. Attack: the validate link re-signed by the evaluator's key (not authorised for validate)"
cp -r "$OUT/honest" "$OUT/attack-c"
validate_link=$(cd "$OUT/attack-c" && ls validate.*.link)
intoto sign -q -f "$OUT/attack-c/$validate_link" -k "$KEYS/evaluator" -o "$OUT/attack-c/$validate_link"
verify "$OUT/attack-c"
attack c E_THRESHOLD

section "5d. Attack: the model swapped after signing (a model trained with another seed: it loads, scans clean, and is not the one signed)"
cp -r "$OUT/honest" "$OUT/attack-d"
/usr/bin/python3 steps/train.py "$OUT/work/runs/train/trainer-a/data/flowers.csv" --out "$OUT/attack-d/model.pkl" --seed 8 >/dev/null
verify "$OUT/attack-d"
attack d E_INSPECTION_FAILED "inspection 'verify-model'"
printf '   caught by the verify-model inspection (intoto model verify, platform'"'"'s key from the signed layout); a deployment gate\n'
printf '   that holds only platform.pub catches it the same way, without in-toto:\n'
printf '     $ intoto model verify model.pkl -k %s/platform.pub\n' "$K"
(cd "$OUT/attack-d" && intoto model verify model.pkl -k "$KEYS/platform.pub" 2>&1 | sed 's/^/     /') || true

# ------------------------------------------------------------------------------------------------
# 6. The release through an OCI registry (issue 15), kept in one function so that it merges
# apart from the pipeline and the attacks above. It starts its own registry (scripts/registry.sh,
# stopped by PID when the function ends, and by the watcher if the demo dies), and sets
# registry_gate to PASS or to what went wrong.
registry_section() {
  local reg=$OUT/registry addr model_hex blob json code
  registry_gate=FAIL
  section "6. Release: push the model to an OCI registry; deploy only through the gate"
  # The released model: the pipeline's final products, exactly what the layout's inspections expect
  # (model.pkl, its signature from the sign step, metrics.json), signed as one model with
  # OpenSSF Model Signing by platform (an ECDSA key: OMS allows no ed25519).
  mkdir -p "$OUT/release"
  cp "$OUT/honest/model.pkl" "$OUT/honest/model.pkl.sig" "$OUT/honest/metrics.json" "$OUT/release/"
  run intoto model sign demo-out/release -k "$K/platform" -o demo-out/model.sig -q
  addr=$(REGISTRY_OWNER_PID=$$ scripts/registry.sh up "$reg")
  trap 'scripts/registry.sh down "$OUT/registry" >/dev/null 2>&1 || true' EXIT
  printf '   registry: Debian docker-registry on %s (storage in demo-out/registry)\n' "$addr"
  local attach=(--attach demo-out/honest/root.layout)
  local link
  for link in "$OUT"/honest/*.link; do attach+=(--attach "demo-out/honest/${link##*/}"); done
  run intoto push demo-out/release "$addr/demo/flowers:v1" --signature demo-out/model.sig "${attach[@]}"
  run intoto versions "$addr/demo/flowers"
  if ! run intoto pull "$addr/demo/flowers:v1" -o demo-out/deployed -k "$K/platform.pub" \
    --layout root.layout --layout-key "$K/owner.pub" --scan --sandbox "$SANDBOX"; then
    registry_gate="FAIL (the honest pull was refused)"
  else
    printf '   deployed: %s\n' "$(cd "$OUT/deployed" && ls | tr '\n' ' ')"
    section "6a. Attack: a byte of model.pkl's blob changed in the registry's storage"
    model_hex=$(sha256sum "$OUT/release/model.pkl" | cut -d' ' -f1)
    blob=$reg/storage/docker/registry/v2/blobs/sha256/${model_hex:0:2}/$model_hex/data
    printf '\x00' | dd of="$blob" bs=1 seek=200 conv=notrunc status=none
    printf '$ intoto pull %s -o demo-out/deployed-2 ... (same flags)\n' "$addr/demo/flowers:v1"
    json=$(intoto pull "$addr/demo/flowers:v1" -o demo-out/deployed-2 -k "$K/platform.pub" \
      --layout root.layout --layout-key "$K/owner.pub" --scan --sandbox "$SANDBOX" --json 2>"$OUT/pull-refused.err") || true
    sed 's/^/   /' "$OUT/pull-refused.err"
    code=$(node -e 'const r = JSON.parse(require("fs").readFileSync(0, "utf8")); process.stdout.write(r.passed ? "PASS" : r.failure.code)' <<<"$json")
    if [[ $code == E_DIGEST_MISMATCH && ! -e $OUT/deployed-2 && -z $(find "$OUT" -maxdepth 1 -name '.intoto-pull-*') ]]; then
      printf '   REFUSED (%s): demo-out/deployed-2 was never created, no temporary files left\n' "$code"
      registry_gate=PASS
    else
      registry_gate="FAIL (corrupted pull: $code)"
      printf '   NOT REFUSED as expected: got %s\n' "$code"
    fi
  fi
  scripts/registry.sh down "$reg"
  trap - EXIT
}

registry_section

elapsed_ms=$((($(date +%s%N) - start_ns) / 1000000))
section "Result"
printf '   honest run: %s; attacks caught: %d of 4; registry gate: %s; %d.%03d s\n' "$honest" "$caught" "$registry_gate" $((elapsed_ms / 1000)) $((elapsed_ms % 1000))
printf '   everything is in demo-out/ (keys are throw-away; demo-out/ is not committed)\n'
if [[ $honest == PASS && $caught -eq 4 && $registry_gate == PASS ]]; then
  echo "   DEMO PASSED"
  exit 0
fi
echo "   DEMO FAILED"
exit 1
