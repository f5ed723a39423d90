// Checks of the probe plugin library's own logic, without TensorRT: calls its creator and plugin the way TensorRT
// would, through the public interfaces only.
//
//     warp_probe_check PLUGIN_LIBRARY
//
// Prints "ok: <check>" per passing check and "FAIL: <check>" per failing one; exit 0 when all pass, 1 otherwise,
// 2 on bad usage. Built by engines.plugin_probe_lib.build_probe_check() (headers only, no TensorRT library).

#include "NvInferRuntime.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>

namespace
{
using namespace nvinfer1;

int gFailures = 0;

void check(bool ok, char const* what)
{
    std::printf("%s: %s\n", ok ? "ok" : "FAIL", what);
    gFailures += ok ? 0 : 1;
}

PluginFieldCollection fields(PluginField const* list, int32_t n)
{
    PluginFieldCollection fc;
    fc.nbFields = n;
    fc.fields = list;
    return fc;
}

int32_t intField(PluginFieldCollection const* fc, char const* name)
{
    for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i)
    {
        if (std::strcmp(fc->fields[i].name, name) == 0 && fc->fields[i].type == PluginFieldType::kINT32)
        {
            return *static_cast<int32_t const*>(fc->fields[i].data);
        }
    }
    return -99;
}

DynamicPluginTensorDesc desc(DataType type, TensorFormat format)
{
    DynamicPluginTensorDesc d{};
    d.desc.type = type;
    d.desc.format = format;
    return d;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc != 2)
    {
        std::fprintf(stderr, "usage: %s PLUGIN_LIBRARY\n", argv[0]);
        return 2;
    }
    void* library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr)
    {
        std::printf("FAIL: dlopen: %s\n", dlerror());
        return 1;
    }
    using GetCreators = IPluginCreatorInterface* const* (*) (int32_t&);
    auto getCreators = reinterpret_cast<GetCreators>(dlsym(library, "getCreators"));
    check(getCreators != nullptr, "exports getCreators");
    if (getCreators == nullptr)
    {
        return 1;
    }
    int32_t nbCreators = 0;
    IPluginCreatorInterface* const* creators = getCreators(nbCreators);
    check(nbCreators == 1 && std::strcmp(creators[0]->getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") == 0,
        "one V3 creator");
    auto* creator = static_cast<IPluginCreatorV3One*>(creators[0]);
    check(std::strcmp(creator->getPluginName(), "WarpOccluded") == 0
            && std::strcmp(creator->getPluginVersion(), "1") == 0
            && std::strcmp(creator->getPluginNamespace(), "fomm.warp") == 0,
        "creator identity fomm.warp::WarpOccluded v1");
    PluginFieldCollection const* names = creator->getFieldNames();
    check(names->nbFields == 2 && std::strcmp(names->fields[0].name, "align_corners") == 0
            && std::strcmp(names->fields[1].name, "padding_mode") == 0,
        "field names align_corners, padding_mode");

    // Attribute parsing: the parser's INT32 fields; align_corners required, 0/1; padding_mode 0 only.
    int32_t const zero = 0;
    int32_t const one = 1;
    int32_t const three = 3;
    int64_t const one64 = 1;
    PluginField const missing[] = {PluginField("padding_mode", &zero, PluginFieldType::kINT32, 1)};
    PluginField const badAlign[] = {PluginField("align_corners", &three, PluginFieldType::kINT32, 1)};
    PluginField const badPadding[]
        = {PluginField("align_corners", &one, PluginFieldType::kINT32, 1), PluginField("padding_mode", &one, PluginFieldType::kINT32, 1)};
    PluginField const notInt[] = {PluginField("align_corners", &one, PluginFieldType::kFLOAT32, 1)};
    PluginField const wide[] = {PluginField("align_corners", &one64, PluginFieldType::kINT64, 1)};
    PluginField const good[] = {PluginField("align_corners", &zero, PluginFieldType::kINT32, 1)};
    PluginFieldCollection fc = fields(missing, 1);
    check(creator->createPlugin("w", &fc, TensorRTPhase::kBUILD) == nullptr, "rejects a missing align_corners");
    fc = fields(badAlign, 1);
    check(creator->createPlugin("w", &fc, TensorRTPhase::kBUILD) == nullptr, "rejects align_corners=3");
    fc = fields(badPadding, 2);
    check(creator->createPlugin("w", &fc, TensorRTPhase::kBUILD) == nullptr, "rejects padding_mode=1");
    fc = fields(notInt, 1);
    check(creator->createPlugin("w", &fc, TensorRTPhase::kBUILD) == nullptr, "rejects a float align_corners");
    fc = fields(wide, 1);
    IPluginV3* wideInt = creator->createPlugin("w", &fc, TensorRTPhase::kBUILD);
    check(wideInt != nullptr, "accepts an INT64 align_corners");
    delete wideInt;
    fc = fields(good, 1);
    IPluginV3* plugin = creator->createPlugin("w", &fc, TensorRTPhase::kBUILD);
    check(plugin != nullptr, "creates the plugin from align_corners=0");
    if (plugin == nullptr)
    {
        return 1;
    }

    auto* core = static_cast<IPluginV3OneCore*>(plugin->getCapabilityInterface(PluginCapabilityType::kCORE));
    auto* build = static_cast<IPluginV3OneBuild*>(plugin->getCapabilityInterface(PluginCapabilityType::kBUILD));
    auto* runtime = static_cast<IPluginV3OneRuntime*>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    check(std::strcmp(core->getInterfaceInfo().kind, "PLUGIN_V3ONE_CORE") == 0
            && std::strcmp(build->getInterfaceInfo().kind, "PLUGIN_V3ONE_BUILD") == 0
            && std::strcmp(runtime->getInterfaceInfo().kind, "PLUGIN_V3ONE_RUNTIME") == 0,
        "core, build and runtime capabilities");
    check(std::strcmp(core->getPluginName(), "WarpOccluded") == 0 && std::strcmp(core->getPluginVersion(), "1") == 0
            && std::strcmp(core->getPluginNamespace(), "fomm.warp") == 0,
        "plugin identity fomm.warp::WarpOccluded v1");

    // Types: one output of the image's type, FP32 or FP16 only.
    check(build->getNbOutputs() == 1, "one output");
    DataType out = DataType::kINT8;
    DataType const halves[] = {DataType::kHALF, DataType::kHALF, DataType::kHALF};
    DataType const ints[] = {DataType::kINT8, DataType::kINT8, DataType::kINT8};
    check(build->getOutputDataTypes(&out, 1, halves, 3) == 0 && out == DataType::kHALF, "FP16 in, FP16 out");
    check(build->getOutputDataTypes(&out, 1, ints, 3) != 0, "rejects INT8 inputs");
    check(build->getOutputDataTypes(&out, 1, halves, 2) != 0, "rejects two inputs");

    // Formats: all linear, all FP32 or all FP16.
    DynamicPluginTensorDesc const f32 = desc(DataType::kFLOAT, TensorFormat::kLINEAR);
    DynamicPluginTensorDesc const f16 = desc(DataType::kHALF, TensorFormat::kLINEAR);
    DynamicPluginTensorDesc const all32[] = {f32, f32, f32, f32};
    DynamicPluginTensorDesc const all16[] = {f16, f16, f16, f16};
    DynamicPluginTensorDesc const mixed[] = {f32, f16, f32, f32};
    DynamicPluginTensorDesc const chw4[] = {desc(DataType::kHALF, TensorFormat::kCHW4)};
    DynamicPluginTensorDesc const int8[] = {desc(DataType::kINT8, TensorFormat::kLINEAR)};
    bool every32 = true;
    bool every16 = true;
    for (int32_t pos = 0; pos < 4; ++pos)
    {
        every32 = every32 && build->supportsFormatCombination(pos, all32, 3, 1);
        every16 = every16 && build->supportsFormatCombination(pos, all16, 3, 1);
    }
    check(every32 && every16, "all FP32 or all FP16, linear");
    check(!build->supportsFormatCombination(1, mixed, 3, 1), "rejects mixed FP32/FP16");
    check(!build->supportsFormatCombination(0, chw4, 3, 1), "rejects a vectorised format");
    check(!build->supportsFormatCombination(0, int8, 3, 1), "rejects INT8");

    // Shapes: (B, C, h, w) from image (B, C, H, W) and grid (B, h, w, 2); the expressions are passed through.
    IDimensionExpr const* e[12];
    for (int32_t i = 0; i < 12; ++i)
    {
        e[i] = reinterpret_cast<IDimensionExpr const*>(&e[i]); // distinct tokens, never dereferenced
    }
    DimsExprs inputs[3];
    for (int32_t i = 0; i < 3; ++i)
    {
        inputs[i].nbDims = 4;
        for (int32_t d = 0; d < 4; ++d)
        {
            inputs[i].d[d] = e[4 * i + d];
        }
    }
    DimsExprs output{};
    alignas(IExprBuilder) unsigned char storage[sizeof(IExprBuilder)]{}; // the plugin never uses the expression builder
    IExprBuilder& exprBuilder = *reinterpret_cast<IExprBuilder*>(storage);
    bool const shaped = build->getOutputShapes(inputs, 3, nullptr, 0, &output, 1, exprBuilder) == 0;
    check(shaped && output.nbDims == 4 && output.d[0] == e[0] && output.d[1] == e[1] && output.d[2] == e[5]
            && output.d[3] == e[6],
        "output shape (image B, image C, grid h, grid w)");
    inputs[1].nbDims = 5;
    check(build->getOutputShapes(inputs, 3, nullptr, 0, &output, 1, exprBuilder) != 0, "rejects a rank-5 grid");

    // Runtime: concrete shapes checked, enqueue fails (no kernel), fields serialised and read back.
    PluginTensorDesc concrete[3]{};
    int64_t const shapes[3][4] = {{1, 4, 16, 16}, {1, 8, 8, 2}, {1, 1, 8, 8}};
    for (int32_t i = 0; i < 3; ++i)
    {
        concrete[i].dims.nbDims = 4;
        for (int32_t d = 0; d < 4; ++d)
        {
            concrete[i].dims.d[d] = shapes[i][d];
        }
    }
    PluginTensorDesc result{};
    check(runtime->onShapeChange(concrete, 3, &result, 1) == 0, "accepts image (1,4,16,16), grid (1,8,8,2)");
    concrete[2].dims.d[1] = 2;
    check(runtime->onShapeChange(concrete, 3, &result, 1) != 0, "rejects occlusion (1,2,8,8)");
    check(runtime->enqueue(concrete, &result, nullptr, nullptr, nullptr, nullptr) != 0, "enqueue fails (no kernel)");
    PluginFieldCollection const* serialised = runtime->getFieldsToSerialize();
    check(intField(serialised, "align_corners") == 0 && intField(serialised, "padding_mode") == 0,
        "serialises align_corners=0, padding_mode=0");
    IPluginV3* restored = creator->createPlugin("w", serialised, TensorRTPhase::kRUNTIME);
    check(restored != nullptr, "recreated from its serialised fields");
    IPluginV3* copy = plugin->clone();
    auto* copyRuntime = static_cast<IPluginV3OneRuntime*>(copy->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    check(intField(copyRuntime->getFieldsToSerialize(), "align_corners") == 0, "clone keeps align_corners");
    delete copy;
    delete restored;
    delete plugin;
    return gFailures == 0 ? 0 : 1;
}
