// Probe plugin library: a compiled IPluginV3 for the fused warp op `fomm.warp::WarpOccluded` (version 1).
//
// Purpose: find out whether TensorRT for RTX parses a fused warp node and builds an engine ahead of time when
// the plugin comes from a compiled library (`IPluginRegistry::loadLibrary`), where the Python IPluginV3 aborts
// the process. It is a probe of parsing and building only: there is no CUDA kernel here and `enqueue` fails.
// A product plugin would keep this structure and launch a real kernel (nvcc, an RTX GPU).
//
// Identity (keep in step with export/warp_op.py): name "WarpOccluded", version "1", namespace "fomm.warp";
// integer attributes `align_corners` (0/1, required) and `padding_mode` (0 = zeros, the only mode implemented).
// Inputs: image (B, C, H, W), grid (B, h, w, 2), occlusion (B, 1, h, w); output (B, C, h, w), the image's type;
// all FP32 or all FP16, linear layout.
//
// Built by engines.plugin_probe_lib.build_probe_library() against TensorRT's public headers (not in the repo)
// and a stub cuda_runtime_api.h (opaque stream/event types): the library never calls CUDA or TensorRT code,
// TensorRT calls it through the interfaces' virtual functions and the two C entry points at the end.
//
// Every call from TensorRT into the library is reported on stderr ("warp_probe: <call>"), so the Python probe
// can tell how far TensorRT got.

#include "NvInferRuntime.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>

namespace
{
using namespace nvinfer1;

constexpr char kNAME[] = "WarpOccluded";
constexpr char kVERSION[] = "1";
constexpr char kNAMESPACE[] = "fomm.warp";
constexpr int32_t kNB_INPUTS = 3;

//! One line on stderr per call from TensorRT ("warp_probe: <what>"): how far TensorRT got with the plugin.
void trace(char const* what)
{
    std::fprintf(stderr, "warp_probe: %s\n", what);
}

//! The node's attributes, as the ONNX parser passes them (plugin fields) and as the engine serialises them.
struct WarpAttributes
{
    int32_t alignCorners{-1}; // -1 = not given
    int32_t paddingMode{0};
};

//! Reads an integer field (the ONNX parser gives INT32; INT64 and INT8 are accepted too). False if not an int.
bool readInt(PluginField const& field, int32_t& value)
{
    if (field.data == nullptr || field.length < 1)
    {
        return false;
    }
    switch (field.type)
    {
    case PluginFieldType::kINT32: value = *static_cast<int32_t const*>(field.data); return true;
    case PluginFieldType::kINT64: value = static_cast<int32_t>(*static_cast<int64_t const*>(field.data)); return true;
    case PluginFieldType::kINT8: value = *static_cast<int8_t const*>(field.data); return true;
    default: return false;
    }
}

//! Parses the fields; false (with the reason on stderr) when align_corners is missing or a value is out of range.
bool parseFields(PluginFieldCollection const* fc, WarpAttributes& out)
{
    WarpAttributes attributes;
    for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i)
    {
        PluginField const& field = fc->fields[i];
        if (field.name == nullptr)
        {
            continue;
        }
        int32_t* target = nullptr;
        if (std::strcmp(field.name, "align_corners") == 0)
        {
            target = &attributes.alignCorners;
        }
        else if (std::strcmp(field.name, "padding_mode") == 0)
        {
            target = &attributes.paddingMode;
        }
        if (target != nullptr && !readInt(field, *target))
        {
            std::fprintf(stderr, "warp_probe: field '%s' is not an integer\n", field.name);
            return false;
        }
    }
    if (attributes.alignCorners != 0 && attributes.alignCorners != 1)
    {
        std::fprintf(stderr, "warp_probe: align_corners must be 0 or 1 (got %d)\n", attributes.alignCorners);
        return false;
    }
    if (attributes.paddingMode != 0)
    {
        std::fprintf(stderr, "warp_probe: padding_mode %d: only 0 (zeros) is implemented\n", attributes.paddingMode);
        return false;
    }
    out = attributes;
    return true;
}

class WarpOccludedPlugin : public IPluginV3, public IPluginV3OneCore, public IPluginV3OneBuild, public IPluginV3OneRuntime
{
public:
    explicit WarpOccludedPlugin(WarpAttributes attributes)
        : mAttributes(attributes)
    {
    }

    // --- IPluginV3 ----------------------------------------------------------------------------------------------

    IPluginCapability* getCapabilityInterface(PluginCapabilityType type) noexcept override
    {
        trace(type == PluginCapabilityType::kCORE ? "getCapabilityInterface core"
                : type == PluginCapabilityType::kBUILD ? "getCapabilityInterface build"
                                                        : "getCapabilityInterface runtime");
        switch (type)
        {
        case PluginCapabilityType::kCORE: return static_cast<IPluginV3OneCore*>(this);
        case PluginCapabilityType::kBUILD: return static_cast<IPluginV3OneBuild*>(this);
        case PluginCapabilityType::kRUNTIME: return static_cast<IPluginV3OneRuntime*>(this);
        }
        return nullptr;
    }

    IPluginV3* clone() noexcept override
    {
        trace("clone");
        return new (std::nothrow) WarpOccludedPlugin(mAttributes);
    }

    // --- core -----------------------------------------------------------------------------------------------------

    AsciiChar const* getPluginName() const noexcept override
    {
        trace("getPluginName");
        return kNAME;
    }

    AsciiChar const* getPluginVersion() const noexcept override
    {
        trace("getPluginVersion");
        return kVERSION;
    }

    AsciiChar const* getPluginNamespace() const noexcept override
    {
        trace("getPluginNamespace");
        return kNAMESPACE;
    }

    // --- build ----------------------------------------------------------------------------------------------------

    int32_t getNbOutputs() const noexcept override
    {
        trace("getNbOutputs");
        return 1;
    }

    int32_t configurePlugin(DynamicPluginTensorDesc const* /*in*/, int32_t nbInputs,
        DynamicPluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept override
    {
        trace("configurePlugin");
        return nbInputs == kNB_INPUTS && nbOutputs == 1 ? 0 : -1;
    }

    int32_t getOutputDataTypes(
        DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept override
    {
        trace("getOutputDataTypes");
        if (nbInputs != kNB_INPUTS || nbOutputs != 1
            || (inputTypes[0] != DataType::kFLOAT && inputTypes[0] != DataType::kHALF))
        {
            return -1;
        }
        outputTypes[0] = inputTypes[0];
        return 0;
    }

    int32_t getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* /*shapeInputs*/,
        int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs, IExprBuilder& /*exprBuilder*/) noexcept override
    {
        trace("getOutputShapes");
        if (nbInputs != kNB_INPUTS || nbOutputs != 1 || inputs[0].nbDims != 4 || inputs[1].nbDims != 4
            || inputs[2].nbDims != 4)
        {
            return -1;
        }
        // (B, C, h, w): batch and channels from the image, spatial size from the grid (B, h, w, 2).
        outputs[0].nbDims = 4;
        outputs[0].d[0] = inputs[0].d[0];
        outputs[0].d[1] = inputs[0].d[1];
        outputs[0].d[2] = inputs[1].d[1];
        outputs[0].d[3] = inputs[1].d[2];
        return 0;
    }

    bool supportsFormatCombination(
        int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t /*nbInputs*/, int32_t /*nbOutputs*/) noexcept override
    {
        trace("supportsFormatCombination");
        PluginTensorDesc const& desc = inOut[pos].desc;
        if (desc.format != TensorFormat::kLINEAR || (desc.type != DataType::kFLOAT && desc.type != DataType::kHALF))
        {
            return false;
        }
        return pos == 0 || desc.type == inOut[0].desc.type; // all FP32 or all FP16
    }

    // --- runtime --------------------------------------------------------------------------------------------------

    int32_t onShapeChange(PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* /*out*/,
        int32_t nbOutputs) noexcept override
    {
        trace("onShapeChange");
        if (nbInputs != kNB_INPUTS || nbOutputs != 1)
        {
            return -1;
        }
        Dims const& image = in[0].dims;
        Dims const& grid = in[1].dims;
        Dims const& occlusion = in[2].dims;
        bool const ok = grid.d[0] == image.d[0] && grid.d[3] == 2 && occlusion.d[0] == image.d[0]
            && occlusion.d[1] == 1 && occlusion.d[2] == grid.d[1] && occlusion.d[3] == grid.d[2];
        return ok ? 0 : -1;
    }

    int32_t enqueue(PluginTensorDesc const* /*inputDesc*/, PluginTensorDesc const* /*outputDesc*/,
        void const* const* /*inputs*/, void* const* /*outputs*/, void* /*workspace*/,
        cudaStream_t /*stream*/) noexcept override
    {
        trace("enqueue: this probe library has no kernel");
        return -1;
    }

    IPluginV3* attachToContext(IPluginResourceContext* /*context*/) noexcept override
    {
        trace("attachToContext");
        return clone();
    }

    PluginFieldCollection const* getFieldsToSerialize() noexcept override
    {
        trace("getFieldsToSerialize");
        mFields[0] = PluginField("align_corners", &mAttributes.alignCorners, PluginFieldType::kINT32, 1);
        mFields[1] = PluginField("padding_mode", &mAttributes.paddingMode, PluginFieldType::kINT32, 1);
        mCollection.nbFields = 2;
        mCollection.fields = mFields;
        return &mCollection;
    }

private:
    WarpAttributes mAttributes;
    PluginField mFields[2];
    PluginFieldCollection mCollection{};
};

class WarpOccludedCreator : public IPluginCreatorV3One
{
public:
    WarpOccludedCreator()
    {
        mFields[0] = PluginField("align_corners", nullptr, PluginFieldType::kINT32, 1);
        mFields[1] = PluginField("padding_mode", nullptr, PluginFieldType::kINT32, 1);
        mCollection.nbFields = 2;
        mCollection.fields = mFields;
    }

    IPluginV3* createPlugin(AsciiChar const* name, PluginFieldCollection const* fc, TensorRTPhase phase) noexcept override
    {
        WarpAttributes attributes;
        if (!parseFields(fc, attributes))
        {
            return nullptr;
        }
        std::fprintf(stderr, "warp_probe: createPlugin '%s' phase=%s align_corners=%d padding_mode=%d\n",
            name != nullptr ? name : "", phase == TensorRTPhase::kBUILD ? "build" : "runtime", attributes.alignCorners,
            attributes.paddingMode);
        return new (std::nothrow) WarpOccludedPlugin(attributes);
    }

    PluginFieldCollection const* getFieldNames() noexcept override
    {
        return &mCollection;
    }

    AsciiChar const* getPluginName() const noexcept override
    {
        return kNAME;
    }

    AsciiChar const* getPluginVersion() const noexcept override
    {
        return kVERSION;
    }

    AsciiChar const* getPluginNamespace() const noexcept override
    {
        return kNAMESPACE;
    }

private:
    PluginField mFields[2];
    PluginFieldCollection mCollection{};
};

} // namespace

// --- entry points that IPluginRegistry::loadLibrary looks up with dlsym ----------------------------------------------

// Exported even under -fvisibility=hidden (TENSORRTAPI exports only when building TensorRT itself).
#define WARP_PROBE_API __attribute__((visibility("default")))

//! Called first with TensorRT's logger finder; the probe logs to stderr instead.
extern "C" WARP_PROBE_API void setLoggerFinder(nvinfer1::ILoggerFinder* /*finder*/) {}

//! The library's V3 plugin creators (loadLibrary registers each one).
extern "C" WARP_PROBE_API nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators)
{
    static WarpOccludedCreator creator;
    static nvinfer1::IPluginCreatorInterface* const creators[] = {&creator};
    nbCreators = 1;
    std::fprintf(stderr, "warp_probe: getCreators -> %s::%s v%s\n", kNAMESPACE, kNAME, kVERSION);
    return creators;
}
