#pragma once
// Fashion-MNIST (Zalando): 28x28 grey-scale images of clothing in 10 classes, 60000 for training
// and 10000 for testing, stored as four IDX files (plain or .gz):
//   train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte t10k-labels-idx1-ubyte
// examples/data/fetch_fashion_mnist.sh puts them in default_data_dir()/fashion-mnist.
#include <string>

#include "runtime/data/dataset.hpp"

namespace hydra {

enum class FashionMnistSplit { train, test };

inline constexpr int kFashionMnistClasses = 10;
inline constexpr int kFashionMnistSide = 28;
// Mean and standard deviation of the training images' pixels scaled to [0, 1].
inline constexpr float kFashionMnistMean = 0.2860f;
inline constexpr float kFashionMnistStd = 0.3530f;

// $HYDRA_DATA_DIR when set and non-empty, else <repository>/.data.
std::string default_data_dir();
// default_data_dir() + "/fashion-mnist".
std::string default_fashion_mnist_dir();

// Loads one split from the directory holding the IDX files. Images: host f32 [N, 1, 28, 28],
// pixels scaled to [0, 1] and, when `normalize`, standardised as (x - 0.2860) / 0.3530.
// Labels: host i32 [N] in [0, 10). Throws hydra::Error naming the file and the problem; when
// files are missing the message says how to fetch them.
Dataset load_fashion_mnist(const std::string& dir, FashionMnistSplit split, bool normalize = true);

// "T-shirt/top", "Trouser", ... for labels 0..9.
const char* fashion_mnist_class_name(int label);

}  // namespace hydra
