"""Repository rule exposing the local CUDA toolkit ($CUDA_HOME, default /usr/local/cuda).

When the toolkit is missing the repository still loads, so the default (non-CUDA) build never needs
it; its targets then fail with a clear message only if a --config=cuda build actually uses them.
"""

_BUILD_WITH_TOOLKIT = """
package(default_visibility = ["//visibility:public"])

filegroup(
    name = "nvcc",
    srcs = ["cuda/bin/nvcc"],
)

filegroup(
    name = "toolkit_files",
    srcs = glob(["cuda/bin/**", "cuda/nvvm/**", "cuda/include/**"]),
)

cc_library(
    name = "headers",
    # Every header, including extension-less ones such as <nv/target> that cuda_fp16.h includes.
    hdrs = glob(["cuda/include/**"]),
    includes = ["cuda/include"],
)

cc_library(
    name = "cudart",
    linkopts = ["-L{home}/lib64", "-Wl,-rpath,{home}/lib64", "-lcudart"],
    deps = [":headers"],
)

cc_library(
    name = "cudnn",
    linkopts = ["-L{home}/lib64", "-lcudnn"],
    deps = [":headers"],
)

cc_library(
    name = "nccl",
    linkopts = ["-L{home}/lib64", "-lnccl"],
    deps = [":headers"],
)
"""

_BUILD_WITHOUT_TOOLKIT = """
package(default_visibility = ["//visibility:public"])

genrule(
    name = "missing_nvcc",
    outs = ["nvcc_missing.sh"],
    cmd = "echo 'echo \\"error: no CUDA toolkit at {home} (set CUDA_HOME)\\" >&2; exit 1' > $@",
    executable = True,
)

filegroup(name = "nvcc", srcs = [":missing_nvcc"])

filegroup(name = "toolkit_files", srcs = [])

cc_library(name = "headers")

cc_library(name = "cudart")

cc_library(name = "cudnn")

cc_library(name = "nccl")
"""

def _cuda_configure_impl(ctx):
    home = ctx.os.environ.get("CUDA_HOME", "/usr/local/cuda")
    if ctx.path(home + "/bin/nvcc").exists:
        ctx.symlink(home, "cuda")
        ctx.file("BUILD", _BUILD_WITH_TOOLKIT.replace("{home}", home))
    else:
        ctx.file("BUILD", _BUILD_WITHOUT_TOOLKIT.replace("{home}", home))

cuda_configure = repository_rule(
    implementation = _cuda_configure_impl,
    environ = ["CUDA_HOME"],
    local = True,
)
