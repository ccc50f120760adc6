# cmake -DMODE=find_package|add_subdirectory -DSOURCE_DIR=... -DBINARY_DIR=... -DWORK_DIR=...
#       -P test_package.cmake
# Builds and runs tests/package/consumer against dynweight, installed (find_package) or as a source
# subdirectory.
foreach(var MODE SOURCE_DIR BINARY_DIR WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "${var} is not set")
  endif()
endforeach()

function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "failed (${result}): ${ARGV}")
  endif()
endfunction()

file(REMOVE_RECURSE ${WORK_DIR}/${MODE})
if(MODE STREQUAL "find_package")
  run(${CMAKE_COMMAND} --install ${BINARY_DIR} --prefix ${WORK_DIR}/prefix)
  set(mode_args -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
else()
  set(mode_args -DDYNWEIGHT_SOURCE_DIR=${SOURCE_DIR})
endif()
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/package/consumer -B ${WORK_DIR}/${MODE}
    -DDYNWEIGHT_CONSUMER_MODE=${MODE} ${mode_args})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/${MODE})
run(${WORK_DIR}/${MODE}/consumer)
