#pragma once
// Escaping of arbitrary text (job names, errors, config values) for the report formats Hydra
// writes: JSON string literals, XML/SVG text and attributes, and CSV fields. Bytes that are not
// valid UTF-8 are replaced by U+FFFD so that every output stays valid for strict parsers.
#include <string>
#include <string_view>

namespace hydra {

// `text` as valid UTF-8: each byte of an invalid or truncated sequence becomes U+FFFD.
std::string sanitize_utf8(std::string_view text);

// A JSON string literal including the quotes: "a\"b\n" -> "\"a\\\"b\\n\"". Control characters
// become \uXXXX (or \n, \t, ...).
std::string json_quote(std::string_view text);

// Text for XML character data and attribute values: & < > " ' become entities; control
// characters other than tab, newline and carriage return (not allowed in XML 1.0) are dropped.
std::string xml_escape(std::string_view text);

// A CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF or starts or ends with
// a space; quotes inside are doubled.
std::string csv_field(std::string_view text);

// A finite double as a short decimal ("%.*g" with `digits` significant digits); NaN and
// infinities (which JSON and SVG cannot hold) become "0".
std::string format_number(double value, int digits = 9);

}  // namespace hydra
