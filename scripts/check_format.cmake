# Fails if any C++ file of the project is not clang-formatted (.clang-format at the root).
file(GLOB_RECURSE sources "${SOURCE_DIR}/src/*.cc" "${SOURCE_DIR}/src/*.cpp" "${SOURCE_DIR}/src/*.h"
     "${SOURCE_DIR}/tests/*.cc" "${SOURCE_DIR}/tests/*.h" "${SOURCE_DIR}/bench/*.cc"
     "${SOURCE_DIR}/fuzz/*.cc")
list(FILTER sources EXCLUDE REGEX "/node_modules/")
execute_process(COMMAND clang-format --dry-run --Werror ${sources} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "clang-format: the files above need `clang-format -i`")
endif()
message(STATUS "clang-format: ${CMAKE_MATCH_COUNT}all files formatted")
