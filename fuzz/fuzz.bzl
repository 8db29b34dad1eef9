"""One libFuzzer target: its FuzzOne library, the fuzzer binary and its regression test."""

load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_library", "cc_test")

def yolopipe_fuzz_target(name, srcs, deps, corpus):
    """Defines <name>_lib, the binary <name> and the test <name>_regression_test.

    Args:
      name: "fuzz_<loader>".
      srcs: the .cc defining yolopipe::fuzz::FuzzOne.
      deps: what srcs needs.
      corpus: the folder name under corpus/ and regressions/.
    """
    cc_library(
        name = name + "_lib",
        testonly = True,
        srcs = srcs + ["fuzz_entry.cc"],
        # The replay main references LLVMFuzzerTestOneInput from a library linked before it.
        alwayslink = 1,
        deps = deps + [
            ":fuzz_target",
            "//third_party:absl",
        ],
    )

    # --config=fuzz (define fuzz=true): libFuzzer supplies main() and drives LLVMFuzzerTestOneInput.
    # Otherwise: the replay main, so `bazel run //fuzz:<name> -- FILE` reproduces a crash with gcc.
    cc_binary(
        name = name,
        testonly = True,
        linkopts = select({
            ":fuzzing": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        deps = [":" + name + "_lib"] + select({
            ":fuzzing": [],
            "//conditions:default": [":replay_main"],
        }),
    )

    cc_test(
        name = name + "_regression_test",
        size = "small",
        srcs = ["replay_test.cc"],
        args = [
            "--corpus=fuzz/corpus/" + corpus,
            "--regressions=fuzz/regressions/" + corpus,
        ],
        # ubsan_suppressions.txt: read under --config=fuzz (see .bazelrc's test_env).
        data = ["ubsan_suppressions.txt"] + native.glob(
            ["corpus/" + corpus + "/**", "regressions/" + corpus + "/**"],
            exclude_directories = 1,
        ),
        deps = [
            ":" + name + "_lib",
            ":replay",
            "//third_party:gtest",
        ],
    )
