// Probe program: the compiled warp plugin through TensorRT's C++ network API, without the ONNX parser.
//
//     network_probe LIBTENSORRT PLUGIN_LIBRARY fp32|fp16
//
// dlopens TensorRT (for RTX: libtensorrt_rtx.so.1 from the tensorrt_rtx_libs wheel), creates a builder with the
// library's own version number, loads PLUGIN_LIBRARY (warp_probe.cpp) into the builder's plugin registry, creates
// the WarpOccluded plugin (align_corners=1), adds it to a network of three inputs with
// INetworkDefinition::addPluginV3 and builds a serialised engine (ahead of time: TensorRT for RTX needs no GPU for
// this). One line per stage on stdout ("stage: ..."), flushed, so a caller can tell how far it got if it dies.
// Exit 0 when it built, 1 when a stage failed.
//
// Built by engines.plugin_probe_lib.build_network_probe() against TensorRT's headers and the CUDA stub. Unlike the
// plugin library (whose interfaces TensorRT calls), this program calls TensorRT's builder and network classes, so
// the headers must be those of the library it loads: for TensorRT-RTX, its own SDK headers. With TensorRT 10.16's
// headers IBuilder::getPluginRegistry already jumps to a bad address in TensorRT-RTX 1.7, with 11.0/11.1's
// addPluginV3 returns a pointer that is not a layer (README, "TensorRT-RTX and plugins").

#include "NvInfer.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>

namespace
{
using namespace nvinfer1;

class StderrLogger : public ILogger
{
public:
    void log(Severity severity, AsciiChar const* msg) noexcept override
    {
        if (severity <= Severity::kWARNING)
        {
            std::fprintf(stderr, "tensorrt: %s\n", msg);
        }
    }
};

void stage(char const* text)
{
    std::printf("%s\n", text);
    std::fflush(stdout);
}

int fail(char const* text)
{
    std::printf("failed: %s\n", text);
    std::fflush(stdout);
    return 1;
}

using CreateBuilder = void* (*) (void*, int32_t);
using LibVersion = int32_t (*)();

} // namespace

int main(int argc, char** argv)
{
    if (argc != 4 || (std::strcmp(argv[3], "fp32") != 0 && std::strcmp(argv[3], "fp16") != 0))
    {
        std::fprintf(stderr, "usage: %s LIBTENSORRT PLUGIN_LIBRARY fp32|fp16\n", argv[0]);
        return 2;
    }
    DataType const type = std::strcmp(argv[3], "fp16") == 0 ? DataType::kHALF : DataType::kFLOAT;

    void* tensorrt = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
    if (tensorrt == nullptr)
    {
        return fail(dlerror());
    }
    auto createBuilder = reinterpret_cast<CreateBuilder>(dlsym(tensorrt, "createInferBuilder_INTERNAL"));
    auto libVersion = reinterpret_cast<LibVersion>(dlsym(tensorrt, "getInferLibVersion"));
    if (createBuilder == nullptr || libVersion == nullptr)
    {
        return fail("the TensorRT library has no createInferBuilder_INTERNAL/getInferLibVersion");
    }
    StderrLogger logger;
    auto* builder = static_cast<IBuilder*>(createBuilder(&logger, libVersion()));
    if (builder == nullptr)
    {
        return fail("createInferBuilder returned null");
    }
    std::printf("builder: library version %d\n", libVersion());
    std::fflush(stdout);

    IPluginRegistry& registry = builder->getPluginRegistry();
    if (registry.loadLibrary(argv[2]) == nullptr)
    {
        return fail("loadLibrary returned null");
    }
    stage("loaded");
    IPluginCreatorInterface* found = registry.getCreator("WarpOccluded", "1", "fomm.warp");
    if (found == nullptr || std::strcmp(found->getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") != 0)
    {
        return fail("no V3 creator fomm.warp::WarpOccluded v1");
    }
    auto* creator = static_cast<IPluginCreatorV3One*>(found);
    int32_t const alignCorners = 1;
    PluginField const field("align_corners", &alignCorners, PluginFieldType::kINT32, 1);
    PluginFieldCollection const fields{1, &field};
    IPluginV3* plugin = creator->createPlugin("warp", &fields, TensorRTPhase::kBUILD);
    if (plugin == nullptr)
    {
        return fail("createPlugin returned null");
    }
    stage("plugin created");

    INetworkDefinition* network = builder->createNetworkV2(0);
    if (network == nullptr)
    {
        return fail("createNetworkV2 returned null");
    }
    ITensor* inputs[] = {
        network->addInput("image", type, Dims4{1, 4, 8, 8}),
        network->addInput("grid", type, Dims4{1, 8, 8, 2}),
        network->addInput("occlusion", type, Dims4{1, 1, 8, 8}),
    };
    stage("adding the plugin layer");
    IPluginV3Layer* layer = network->addPluginV3(inputs, 3, nullptr, 0, *plugin);
    if (layer == nullptr)
    {
        return fail("addPluginV3 returned null");
    }
    std::printf("plugin layer added: network has %d inputs, %d layers; layer type %d, %d output(s)\n",
        network->getNbInputs(), network->getNbLayers(), static_cast<int32_t>(layer->getType()), layer->getNbOutputs());
    std::fflush(stdout);
    ITensor* output = layer->getOutput(0);
    stage("output tensor");
    output->setName("out");
    network->markOutput(*output);
    std::printf("output marked: %d output(s)\n", network->getNbOutputs());
    std::fflush(stdout);
    IBuilderConfig* config = builder->createBuilderConfig();
    stage("builder config");
    stage("building");
    IHostMemory* engine = builder->buildSerializedNetwork(*network, *config);
    if (engine == nullptr)
    {
        return fail("buildSerializedNetwork returned null");
    }
    std::printf("built %zu bytes\n", static_cast<size_t>(engine->size()));
    std::fflush(stdout);
    delete engine;
    delete config;
    delete network;
    delete builder;
    return 0;
}
