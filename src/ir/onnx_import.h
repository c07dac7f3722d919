// ONNX import: a serialized ModelProto becomes an ir::Graph.
//
// Guarantees after import: every node input refers to a value that is a graph input, an
// initializer, a capture from an enclosing graph or the output of an earlier node (nodes are
// topologically sorted, cycles rejected); every node's schema is resolved in the registry for its
// domain's opset (an unknown op is kUnsupported naming op, domain, opset and node); initializers
// and Constant outputs carry their data; subgraphs (If/Loop/Scan bodies) are imported with their
// captures. Shapes are those the model declares; ir::infer_shapes fills in the rest.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "ir/graph.h"

namespace kiln::ir {

/// Parses and imports a model. External data is resolved inside `base_dir` only (empty: none
/// allowed). Throws kiln::Error (kInvalidModel, kUnsupported).
std::unique_ptr<Graph> import_onnx(std::span<const uint8_t> bytes, const std::string& base_dir);

/// Reads a whole file; kIo error naming the path when it cannot.
std::string read_file(const std::string& path);

}  // namespace kiln::ir
