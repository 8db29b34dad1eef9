"""cuda_library: compiles .cu files with nvcc (only under --config=cuda) into a cc_library.

Without --config=cuda the nvcc step is replaced by an empty placeholder and the library has no
sources, so `bazel build //...` needs no toolkit. Code that calls into a cuda_library must itself be
selected on //third_party/cuda:enabled.
"""

_NVCC_FLAGS = " ".join([
    "-std=c++17",
    "-O3",
    "-Xcompiler -fPIC",
    "-gencode arch=compute_90,code=sm_90",
    "-gencode arch=compute_90,code=compute_90",
    "--expt-relaxed-constexpr",
])

def cuda_library(name, srcs, hdrs = [], deps = [], **kwargs):
    objs = []
    for src in srcs:
        stem = src.replace("/", "_").rsplit(".", 1)[0]
        obj = "_%s_%s.pic.o" % (name, stem)
        native.genrule(
            name = "_%s_%s_nvcc" % (name, stem),
            srcs = [src] + hdrs,
            outs = [obj],
            tools = ["@local_cuda//:nvcc", "@local_cuda//:toolkit_files"],
            cmd = select({
                "//third_party/cuda:enabled": "$(location @local_cuda//:nvcc) " + _NVCC_FLAGS +
                                               " -I. -c $(location " + src + ") -o $@",
                "//conditions:default": "echo 'built without --config=cuda' > $@",
            }),
        )
        objs.append(obj)
    native.cc_library(
        name = name,
        srcs = select({
            "//third_party/cuda:enabled": objs,
            "//conditions:default": [],
        }),
        hdrs = hdrs,
        deps = deps + select({
            "//third_party/cuda:enabled": ["@local_cuda//:cudart"],
            "//conditions:default": [],
        }),
        **kwargs
    )
