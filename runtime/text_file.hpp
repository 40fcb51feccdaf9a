#pragma once
// Writing a whole report file (JSON, SVG, CSV) at once, with errors that name the file.
#include <string>
#include <string_view>

namespace hydra {

// Writes `text` to `path` (created or truncated). Throws hydra::Error "<what>: cannot open
// <path> for writing: <reason>" (or "writing <path> failed") on any I/O failure.
void write_text_file(const std::string& path, std::string_view text, const std::string& what);

}  // namespace hydra
