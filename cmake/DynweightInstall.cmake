include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(DYNWEIGHT_CMAKE_DIR ${CMAKE_INSTALL_DATADIR}/cmake/dynweight)

install(TARGETS dynweight EXPORT dynweightTargets)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(
  EXPORT dynweightTargets
  NAMESPACE dynweight::
  DESTINATION ${DYNWEIGHT_CMAKE_DIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/dynweightConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/dynweightConfig.cmake
                              INSTALL_DESTINATION ${DYNWEIGHT_CMAKE_DIR})
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/dynweightConfigVersion.cmake
  COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
install(FILES ${PROJECT_BINARY_DIR}/dynweightConfig.cmake
              ${PROJECT_BINARY_DIR}/dynweightConfigVersion.cmake DESTINATION ${DYNWEIGHT_CMAKE_DIR})
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/dynweight)
