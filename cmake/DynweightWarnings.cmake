# Warnings as errors on dynweight's own targets only; never on the parent build or on consumers.
#
# GCC before 12.3 (Debian 12 ships 12.2) reports false -Wuninitialized / -Wmaybe-uninitialized
# inside its own AVX-512 intrinsics (`__m512d __Y = __Y;` in avx512fintrin.h), wherever Eigen's
# AVX-512 packets are inlined: thousands of them in a -march=native build on an AVX-512 machine.
# Those two warnings are turned off for such builds only.
include(CheckCXXSourceCompiles)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 12.3)
  check_cxx_source_compiles("
    #ifndef __AVX512F__
    #error no AVX-512
    #endif
    int main() { return 0; }" DYNWEIGHT_GCC_AVX512_FALSE_UNINITIALIZED)
endif()

function(dynweight_set_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror)
    if(DYNWEIGHT_GCC_AVX512_FALSE_UNINITIALIZED)
      target_compile_options(${target} PRIVATE -Wno-uninitialized -Wno-maybe-uninitialized)
    endif()
  elseif(MSVC)
    target_compile_options(${target} PRIVATE /W4 /WX)
  endif()
endfunction()
