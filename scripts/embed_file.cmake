# Writes OUTPUT, a C++ source defining `std::string_view <FUNCTION>()` (declared in HEADER) that
# returns the bytes of INPUT exactly, so the binary carries the file and needs none at run time.
#   cmake -DINPUT=<file> -DOUTPUT=<file.cc> -DHEADER=<include> -DFUNCTION=<name> -P embed_file.cmake
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" digits)
math(EXPR size "${digits} / 2")
# Sixteen bytes a line, each as 0xNN.
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REPEAT "0x[0-9a-f][0-9a-f]," 16 line)
string(REGEX REPLACE "(${line})" "\\1\n    " bytes "${bytes}")
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT} by scripts/embed_file.cmake: do not edit.\n"
  "#include \"${HEADER}\"\n\n"
  "namespace callgate {\n\n"
  "namespace {\n"
  "constexpr unsigned char kBytes[${size} + 1] = {\n    ${bytes}0};\n"
  "}  // namespace\n\n"
  "std::string_view ${FUNCTION}() {\n"
  "  return {reinterpret_cast<const char*>(kBytes), ${size}};\n"
  "}\n\n"
  "}  // namespace callgate\n")
# Only a changed file is rewritten, so an unchanged document rebuilds nothing.
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
