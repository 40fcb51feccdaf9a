#include "runtime/data/fashion_mnist.hpp"

#include <cstdlib>
#include <filesystem>

#include "runtime/data/idx_file.hpp"

#ifndef HYDRA_SOURCE_DIR
#error "HYDRA_SOURCE_DIR must be defined (the repository root) by the build"
#endif

namespace hydra {

std::string default_data_dir() {
  const char* env = std::getenv("HYDRA_DATA_DIR");
  if (env && *env) return env;
  return std::string(HYDRA_SOURCE_DIR) + "/.data";
}

std::string default_fashion_mnist_dir() {
  return default_data_dir() + "/fashion-mnist";
}

Dataset load_fashion_mnist(const std::string& dir, FashionMnistSplit split, bool normalize) {
  const std::string prefix = split == FashionMnistSplit::train ? "train" : "t10k";
  const std::string images_path = resolve_idx_path(dir + "/" + prefix + "-images-idx3-ubyte");
  const std::string labels_path = resolve_idx_path(dir + "/" + prefix + "-labels-idx1-ubyte");
  std::error_code ec;
  for (const auto& p : {images_path, labels_path})
    if (!std::filesystem::exists(p, ec))
      throw Error("Fashion-MNIST: " + p + " not found (nor " + p +
                  ".gz). Fetch the dataset by running " + std::string(HYDRA_SOURCE_DIR) +
                  "/examples/data/fetch_fashion_mnist.sh (it installs into " +
                  "$HYDRA_DATA_DIR/fashion-mnist, by default <repo>/.data/fashion-mnist)");

  const IdxLabelled raw = read_idx_labelled(images_path, labels_path);
  const Shape want_images{raw.images.dims[0], kFashionMnistSide, kFashionMnistSide};
  if (raw.images.dims != want_images)
    throw Error("Fashion-MNIST: " + images_path + " holds images " + shape_str(raw.images.dims) +
                ", expected [N, 28, 28]");
  const std::int64_t n = raw.images.dims[0];

  Tensor labels = Tensor::empty({n}, DType::i32);
  std::int32_t* l = labels.data_as<std::int32_t>();
  for (std::int64_t i = 0; i < n; ++i) {
    const int v = raw.labels.data[static_cast<std::size_t>(i)];
    if (v >= kFashionMnistClasses)
      throw Error("Fashion-MNIST: " + labels_path + ": label " + std::to_string(v) + " of sample " +
                  std::to_string(i) + " is outside [0, 10)");
    l[i] = v;
  }

  // x = (pixel / 255 - mean) / std, as one multiply-add per pixel via a lookup table.
  float table[256];
  for (int v = 0; v < 256; ++v) {
    const float x = static_cast<float>(v) / 255.0f;
    table[v] = normalize ? (x - kFashionMnistMean) / kFashionMnistStd : x;
  }
  Tensor images = Tensor::empty({n, 1, kFashionMnistSide, kFashionMnistSide}, DType::f32);
  float* x = images.data_as<float>();
  const std::int64_t total = raw.images.numel();
  for (std::int64_t i = 0; i < total; ++i)
    x[i] = table[raw.images.data[static_cast<std::size_t>(i)]];
  return Dataset(images, labels);
}

const char* fashion_mnist_class_name(int label) {
  static const char* const names[kFashionMnistClasses] = {
      "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  if (label < 0 || label >= kFashionMnistClasses)
    throw Error("fashion_mnist_class_name: label " + std::to_string(label) + " outside [0, 10)");
  return names[label];
}

}  // namespace hydra
