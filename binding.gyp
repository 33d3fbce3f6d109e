{
  # Builds native/src/*.cc into build/Release/diffuse_native.node (plain N-API, no node-addon-api).
  # Portable flags only: no -march, no -ffast-math (kernels must keep IEEE behaviour for parity with
  # the js backend). -fno-trapping-math changes no result (nothing enables FP traps); without it GCC will
  # not if-convert the float selects in vexp and friends, so exp, sigmoid, SiLU, tanh and GELU loops stay
  # scalar (measured: exp over 6.4 M floats 41 ms scalar, 6.7 ms vectorized on AVX2). Hot loops carry their own target attributes / target_clones and dispatch at run time
  # (native/src/cpu.cc), so one build runs on any CPU of its architecture. No system library: the GEMM is
  # our own (native/src/gemm.cc, sgemm_kernels.cc); a C++17 compiler, make and Python 3 (node-gyp) suffice.
  "targets": [
    {
      "target_name": "diffuse_native",
      "sources": [
        "native/src/addon.cc",
        "native/src/cpu.cc",
        "native/src/pool.cc",
        "native/src/elementwise.cc",
        "native/src/norm.cc",
        "native/src/gemm.cc",
        "native/src/sgemm_kernels.cc",
        "native/src/conv.cc",
        "native/src/conv_direct.cc",
        "native/src/signals.cc"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc!": ["-std=gnu++17", "-std=gnu++1y", "-std=gnu++14"],
      "cflags": ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd", "-Wall", "-Wno-unused-function"],
      "cflags_cc": ["-std=c++17", "-O3", "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd", "-Wall", "-Wno-unused-function"],
      "conditions": [
        ["OS=='mac'", {
          "xcode_settings": {
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "GCC_OPTIMIZATION_LEVEL": "3",
            "MACOSX_DEPLOYMENT_TARGET": "11.0",
            "OTHER_CFLAGS": ["-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd"],
            "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd"]
          }
        }],
        ["OS=='linux'", {
          "libraries": ["-lpthread"],
          "ldflags": ["-Wl,-z,now"]
        }]
      ]
    }
  ]
}
