# Helpers for the sanitizer build (FFIBROKER_SANITIZE, docs/testing.md).

# ffibroker_sources_of(OUT TARGET): TARGET's source files as absolute paths,
# so that another target can compile the same files with other flags.
function(ffibroker_sources_of out target)
  get_target_property(sources ${target} SOURCES)
  get_target_property(dir ${target} SOURCE_DIR)
  set(result)
  foreach(source IN LISTS sources)
    cmake_path(ABSOLUTE_PATH source BASE_DIRECTORY ${dir} OUTPUT_VARIABLE absolute)
    list(APPEND result ${absolute})
  endforeach()
  set(${out} ${result} PARENT_SCOPE)
endfunction()

# ffibroker_without_sanitizers(TARGET): TARGET is code that ffibroker does
# not own (the native test libraries stand for a user's library): compiled
# as a user would compile it, without instrumentation.
function(ffibroker_without_sanitizers target)
  if(FFIBROKER_SANITIZE)
    target_compile_options(${target} PRIVATE -fno-sanitize=all)
    # Else clang links libclang_rt.asan_static into a shared library, whose
    # references only an ASan executable resolves (the worker is none).
    target_link_options(${target} PRIVATE -fno-sanitize=all)
  endif()
endfunction()
