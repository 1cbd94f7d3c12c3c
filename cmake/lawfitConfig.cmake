# lawfitConfig.cmake: lawfit's header-only C++ core for find_package(lawfit CONFIG).
#
#   find_package(lawfit CONFIG REQUIRED)
#   target_link_libraries(my_app PRIVATE lawfit::headers)
#
# lawfit::headers (also named lawfit::core) is an INTERFACE target: the include directory
# holding lawfit/*.h, C++17, and the floating-point options the solver's results depend on.
# Point CMake at this file's directory with -Dlawfit_DIR=$(python -c "import lawfit;
# print(lawfit.get_cmake_dir())"), or at the installed package with CMAKE_PREFIX_PATH.
#
# The same file serves two layouts: installed in the Python package
# (<site-packages>/lawfit/share/cmake/lawfit/, headers in <site-packages>/lawfit/include) and
# in a source checkout (<repo>/cmake/, headers in <repo>/cpp/include).

if(CMAKE_VERSION VERSION_LESS 3.15)
  message(FATAL_ERROR "lawfit's CMake package needs CMake 3.15 or newer")
endif()

get_filename_component(_lawfit_installed "${CMAKE_CURRENT_LIST_DIR}/../../../include" ABSOLUTE)
get_filename_component(_lawfit_checkout "${CMAKE_CURRENT_LIST_DIR}/../cpp/include" ABSOLUTE)
if(CMAKE_CURRENT_LIST_DIR MATCHES "/share/cmake/lawfit$" AND
   EXISTS "${_lawfit_installed}/lawfit/lm.h")
  set(lawfit_INCLUDE_DIR "${_lawfit_installed}")
elseif(EXISTS "${_lawfit_checkout}/lawfit/lm.h")
  set(lawfit_INCLUDE_DIR "${_lawfit_checkout}")
else()
  set(lawfit_FOUND FALSE)
  set(lawfit_NOT_FOUND_MESSAGE
      "lawfit's headers (lawfit/lm.h) are in neither ${_lawfit_installed} nor ${_lawfit_checkout}")
  return()
endif()
unset(_lawfit_installed)
unset(_lawfit_checkout)

if(NOT TARGET lawfit::headers)
  add_library(lawfit::headers INTERFACE IMPORTED)
  # The flags lawfit's own build compiles the headers with (CMakeLists.txt, LAWFIT_CXX_FLAGS),
  # so that a program's fits give the bits lawfit.fit gives:
  #   -ffp-contract=off  no fused multiply-add unless the code writes one (fmadd, hd.h);
  #   -fno-fast-math     fast-math would fold away the NaN and infinity checks that isolate
  #                      a bad problem (it comes first, so that the two after it stand);
  #   -fno-math-errno    lets sqrt inline; it changes no result.
  # They follow the consumer's CMAKE_CXX_FLAGS on the command line, so they win over a
  # project-wide -ffast-math or -ffp-contract=fast.  No -march: that is the consumer's choice.
  set_target_properties(lawfit::headers PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${lawfit_INCLUDE_DIR}"
    INTERFACE_COMPILE_FEATURES cxx_std_17
    INTERFACE_COMPILE_OPTIONS
      "$<$<COMPILE_LANG_AND_ID:CXX,GNU,Clang,AppleClang>:-fno-fast-math;-fno-math-errno;-ffp-contract=off>")
endif()
if(NOT TARGET lawfit::core)
  add_library(lawfit::core INTERFACE IMPORTED)
  set_target_properties(lawfit::core PROPERTIES INTERFACE_LINK_LIBRARIES lawfit::headers)
endif()

set(lawfit_FOUND TRUE)
