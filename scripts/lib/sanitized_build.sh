# Sourced by scripts/test and scripts/fuzz: the one definition of the sanitizer build both use.
#
# The tree is built with clang at -O1 with line tables only: measured on the 2-core CI machine, gcc's
# -O2 -g with ASan+UBSan spent 25-35 s per file and clang -O1 -gline-tables-only 5-7 s, with the same
# sanitizers and stack traces that still name file and line. Clang also builds the libFuzzer targets in the
# same tree (fuzz/meson.build), so CI needs no second one.

# The build directory for a ROCKY_SANITIZE value: address,undefined -> build/asan, thread -> build/tsan.
# Prints nothing and returns 1 for any other value.
rocky_sanitized_build_dir() {
  case "$1" in
    address,undefined) echo build/asan ;;
    thread) echo build/tsan ;;
    *) return 1 ;;
  esac
}

# Configures DIR for SANITIZE unless it is configured already. No build.ninja means never configured or a
# configure that failed half way: start clean. meson's output goes to DIR/configure.log, which is printed when
# it fails; returns meson's status.
rocky_configure_sanitized() {
  local dir=$1 sanitize=$2
  [[ -f $dir/build.ninja ]] && return 0
  rm -rf "$dir"
  mkdir -p "$dir"
  # b_lundef=false: clang's sanitizer runtimes are linked into executables only, not into static libraries.
  CXX=clang++ meson setup "$dir" -Db_sanitize="$sanitize" -Db_lundef=false \
    -Doptimization=1 -Ddebug=false -Dcpp_args=-gline-tables-only >"$dir/configure.log" 2>&1 ||
    { cat "$dir/configure.log"; return 1; }
}
