"""The module ComfyUI's /object_info names for each of its core nodes (``python_module``): ``nodes`` for
nodes.py's, ``comfy_extras.nodes_<file>`` and ``comfy_api_nodes.nodes_<file>`` for the rest (the package
alone for nodes newer than the ComfyUI source read). Generated from bench/data/node_classes.json by
``python bench/node_classes.py --python-modules``; do not edit by hand."""

COMFYUI_MODULES: dict[str, tuple[str, ...]] = {
    "comfy_api_nodes": (
        "BeebleSwitchXImageEdit", "BeebleSwitchXVideoEdit", "BriaEraser", "BriaExpandImage", "BriaGenFill",
        "BriaGuidedRemoveBackground", "BriaImageEditNode", "BriaImageGenerate", "BriaIncreaseResolution",
        "BriaProductHolding", "BriaRemoveImageBackground", "BriaRemoveVideoBackground",
        "BriaTransparentVideoBackground", "BriaVideoGreenScreen", "BriaVideoReplaceBackground",
        "BriaVirtualTryOn", "ByteDance2DraftToFinalVideoNode", "ByteDance2FirstLastFrameNode",
        "ByteDance2ReferenceNode", "ByteDance2ReferenceNodeV2", "ByteDance2TextToVideoNode",
        "ByteDanceCreateImageAsset", "ByteDanceCreateVideoAsset", "ByteDanceSeedAudio", "ByteDanceSeedNode",
        "ByteDanceSeedreamLayerSeparationNodeV2", "ByteDanceSeedreamNodeV2", "ByteDanceSeedreamNodeV3",
        "ByteDanceVideoEnhanceNode", "ClarityCrystalUpscaleNode", "ClarityCrystalVideoUpscaleNode",
        "ClaudeNode", "ElevenLabsAudioIsolation", "ElevenLabsInstantVoiceClone", "ElevenLabsSpeechToSpeech",
        "ElevenLabsSpeechToText", "ElevenLabsTextToDialogue", "ElevenLabsTextToSoundEffects",
        "ElevenLabsTextToSpeech", "ElevenLabsVoiceSelector", "FishAudioInstantVoiceClone",
        "FishAudioSpeechToText", "FishAudioTextToSpeech", "FishAudioVoiceSelector", "Flux2ImageNode",
        "Flux3ImageNode", "Flux3ImageToVideoNode", "Flux3MaxImageToVideoNode", "Flux3MaxTextToVideoNode",
        "Flux3TextToVideoNode", "FluxEraseNode", "FluxKontextMaxImageNode", "FluxKontextProImageNode",
        "FluxVTONode", "FluxVideoEditNode", "FluxVideoUpscaleNode", "GeminiNanoBanana2",
        "GeminiNanoBanana2V2", "GeminiNodeV2", "GeminiNodeV3", "GeminiVideoOmniV2", "GrokImageEditNode",
        "GrokImageEditNodeV2", "GrokImageNode", "GrokVideoEditNode", "GrokVideoExtendNode", "GrokVideoNode",
        "GrokVideoReferenceNode", "HappyHorseImageToVideoApi", "HappyHorseReferenceVideoApi",
        "HappyHorseTextToVideoApi", "HappyHorseVideoEditApi", "HeyGenAvatarVideoNode",
        "HeyGenCreateAvatarNode", "HeyGenImageToVideoNode", "HeyGenReferenceToVideoNode",
        "HeyGenTalkingPhotoNode", "HeyGenTextToSpeechNode", "HeyGenVideoTranslateNode",
        "HeyGenVoiceCloneNode", "HeyGenVoiceTextToSpeechNode", "HiggsfieldMotionTransferNode",
        "HitPawGeneralImageEnhance", "HitPawVideoEnhance", "HunyuanImageEditApi",
        "HunyuanImageTextToImageApi", "IdeogramEditApi", "IdeogramPImage", "IdeogramPreciseEditApi",
        "IdeogramTextToImageApi", "IdeogramV4", "IdeogramVectorGenerateApi", "IdeogramVectorImageToSVGApi",
        "Kling4EditVideoNode", "Kling4ImageToVideoNode", "Kling4ReferenceToVideoNode",
        "Kling4TextToVideoNode", "KlingFirstLastFrameNode", "KlingTryOnNode", "KlingVideoNode",
        "Krea2ImageNode", "Krea2StyleReferenceNode", "Krea3ImageNode", "LtxApi25ImageToVideo",
        "LtxApi25TextToVideo", "LumaImageEditNode2", "LumaImageNode2", "LumaRay32ExtendVideoNode",
        "LumaRay32ImageToVideoNode", "LumaRay32TextToVideoNode", "LumaRay32VideoEditNode",
        "MagnificImageRelightNode", "MagnificImageSkinEnhancerNode", "MagnificImageStyleTransferNode",
        "MagnificImageUpscalerCreativeNode", "MagnificImageUpscalerPreciseV2Node", "MeshyAnimateModelNode",
        "MeshyImageToModelNode", "MeshyImageToModelSmartTopologyNode", "MeshyMultiImageToModelNode",
        "MeshyRefineNode", "MeshyRigModelNode", "MeshyTextToModelNode", "MeshyTextToModelSmartTopologyNode",
        "MeshyTextureNode", "MetaMuseImageEditApi", "MetaMuseImageTextToImageApi",
        "MinimaxHailuo03ContextIRNode", "MinimaxHailuo03FirstLastFrameNode", "MinimaxHailuo03ReferenceNode",
        "MinimaxHailuo03RegenerateNode", "MinimaxHailuo03TextToVideoNode", "MireloTextToSFX",
        "MireloVideoToSFX", "OpenAIGPTImageNodeV2", "OpenRouterImageNode", "OpenRouterLLMNode",
        "PixverseV6FusionVideoNode", "PixverseV6ImageToVideoNode", "PixverseV6TextToVideoNode",
        "PrunaImageToVideoNode", "PrunaTextToVideoNode", "QuiverImageToSVGNodeV2", "QuiverTextToSVGNodeV2",
        "QwenImageEditApi", "QwenImageTextToImageApi", "RecraftCreateStyleNode", "RecraftV4CreateStyleNode",
        "RecraftV4TextToImageNode", "RecraftV4TextToVectorNode", "Rodin3D_Gen25_Image", "Rodin3D_Gen25_Text",
        "RunwayAleph2KeyframeNode", "RunwayAleph2PromptImageNode", "RunwayAleph2VideoToVideoNode",
        "SoniloTextToMusic", "SoniloVideoToMusic", "SyncLipSyncNode", "SyncTalkingImageNode",
        "Tencent3DPartNode", "TencentImageToModelNode", "TencentModelTo3DUVNode", "TencentSmartTopologyNode",
        "TencentTextToModelNode", "TopazImageEnhanceV2", "TopazVideoEnhanceV2", "TripoImageToModelNodeV2",
        "TripoP1ImageToModelNode", "TripoP1MultiviewToModelNode", "TripoP1TextToModelNode",
        "TripoPSeriesImageToModelNode", "TripoPSeriesMultiviewToModelNode", "TripoPSeriesTextToModelNode",
        "TripoTextToModelNodeV2", "TripoTextureNodeV2", "VeedCleanAudioNode", "VeedCleanVideoAudioNode",
        "VeedFabricNode", "VeedLipsyncNode", "VeedRemoveVideoBackgroundNode", "Vidu2ImageToVideoNode",
        "Vidu2ReferenceVideoNode", "Vidu2StartEndToVideoNode", "Vidu2TextToVideoNode",
        "Vidu3ImageToVideoNode", "Vidu3TextToVideoNode", "Vidu4ImageToVideoNode", "Vidu4ReferenceVideoNode",
        "ViduExtendVideoNode", "Wan2ImageToVideoApi", "Wan2ReferenceVideoApi", "Wan2TextToVideoApi",
        "Wan2VideoEditApi", "Wan3ImageToVideoApi", "Wan3ReferenceToVideoApi", "WavespeedFlashVSRNode",
        "WavespeedImageUpscaleNode",
    ),
    "comfy_api_nodes.nodes_bfl": (
        "FluxProExpandNode", "FluxProFillNode", "FluxProUltraImageNode",
    ),
    "comfy_api_nodes.nodes_bytedance": (
        "ByteDanceFirstLastFrameNode", "ByteDanceImageEditNode", "ByteDanceImageNode",
        "ByteDanceImageReferenceNode", "ByteDanceImageToVideoNode", "ByteDanceSeedreamNode",
        "ByteDanceTextToVideoNode",
    ),
    "comfy_api_nodes.nodes_gemini": (
        "GeminiImage2Node", "GeminiImageNode", "GeminiInputFiles", "GeminiNode",
    ),
    "comfy_api_nodes.nodes_ideogram": (
        "IdeogramV1", "IdeogramV2", "IdeogramV3",
    ),
    "comfy_api_nodes.nodes_kling": (
        "KlingCameraControlI2VNode", "KlingCameraControlT2VNode", "KlingCameraControls",
        "KlingDualCharacterVideoEffectNode", "KlingImage2VideoNode", "KlingImageGenerationNode",
        "KlingImageToVideoWithAudio", "KlingLipSyncAudioToVideoNode", "KlingLipSyncTextToVideoNode",
        "KlingMotionControl", "KlingOmniProEditVideoNode", "KlingOmniProFirstLastFrameNode",
        "KlingOmniProImageNode", "KlingOmniProImageToVideoNode", "KlingOmniProTextToVideoNode",
        "KlingOmniProVideoToVideoNode", "KlingSingleImageVideoEffectNode", "KlingStartEndFrameNode",
        "KlingTextToVideoNode", "KlingTextToVideoWithAudio", "KlingVideoExtendNode", "KlingVirtualTryOnNode",
    ),
    "comfy_api_nodes.nodes_ltxv": (
        "LtxvApiImageToVideo", "LtxvApiTextToVideo",
    ),
    "comfy_api_nodes.nodes_luma": (
        "LumaConceptsNode", "LumaImageModifyNode", "LumaImageNode", "LumaImageToVideoNode",
        "LumaReferenceNode", "LumaVideoNode",
    ),
    "comfy_api_nodes.nodes_minimax": (
        "MinimaxHailuoVideoNode", "MinimaxImageToVideoNode", "MinimaxSubjectToVideoNode",
        "MinimaxTextToVideoNode",
    ),
    "comfy_api_nodes.nodes_moonvalley": (
        "MoonvalleyImg2VideoNode", "MoonvalleyTxt2VideoNode", "MoonvalleyVideo2VideoNode",
    ),
    "comfy_api_nodes.nodes_openai": (
        "OpenAIChatConfig", "OpenAIChatNode", "OpenAIDalle2", "OpenAIDalle3", "OpenAIGPTImage1",
        "OpenAIInputFiles",
    ),
    "comfy_api_nodes.nodes_pixverse": (
        "PixverseImageToVideoNode", "PixverseTemplateNode", "PixverseTextToVideoNode",
        "PixverseTransitionVideoNode",
    ),
    "comfy_api_nodes.nodes_recraft": (
        "RecraftColorRGB", "RecraftControls", "RecraftCreativeUpscaleNode", "RecraftCrispUpscaleNode",
        "RecraftImageInpaintingNode", "RecraftImageToImageNode", "RecraftRemoveBackgroundNode",
        "RecraftReplaceBackgroundNode", "RecraftStyleV3DigitalIllustration",
        "RecraftStyleV3InfiniteStyleLibrary", "RecraftStyleV3LogoRaster", "RecraftStyleV3RealisticImage",
        "RecraftStyleV3VectorIllustrationNode", "RecraftTextToImageNode", "RecraftTextToVectorNode",
        "RecraftVectorizeImageNode",
    ),
    "comfy_api_nodes.nodes_rodin": (
        "Rodin3D_Detail", "Rodin3D_Gen2", "Rodin3D_Regular", "Rodin3D_Sketch", "Rodin3D_Smooth",
    ),
    "comfy_api_nodes.nodes_runway": (
        "RunwayFirstLastFrameNode", "RunwayImageToVideoNodeGen3a", "RunwayImageToVideoNodeGen4",
        "RunwayTextToImageNode",
    ),
    "comfy_api_nodes.nodes_sora": (
        "OpenAIVideoSora2",
    ),
    "comfy_api_nodes.nodes_stability": (
        "StabilityAudioInpaint", "StabilityAudioToAudio", "StabilityStableImageSD_3_5Node",
        "StabilityStableImageUltraNode", "StabilityTextToAudio", "StabilityUpscaleConservativeNode",
        "StabilityUpscaleCreativeNode", "StabilityUpscaleFastNode",
    ),
    "comfy_api_nodes.nodes_topaz": (
        "TopazImageEnhance", "TopazVideoEnhance",
    ),
    "comfy_api_nodes.nodes_tripo": (
        "TripoConversionNode", "TripoImageToModelNode", "TripoMultiviewToModelNode", "TripoRefineNode",
        "TripoRetargetNode", "TripoRigNode", "TripoTextToModelNode", "TripoTextureNode",
    ),
    "comfy_api_nodes.nodes_veo2": (
        "Veo3FirstLastFrameNode", "Veo3VideoGenerationNode", "VeoVideoGenerationNode",
    ),
    "comfy_api_nodes.nodes_vidu": (
        "ViduImageToVideoNode", "ViduReferenceVideoNode", "ViduStartEndToVideoNode", "ViduTextToVideoNode",
    ),
    "comfy_api_nodes.nodes_wan": (
        "WanImageToImageApi", "WanImageToVideoApi", "WanReferenceVideoApi", "WanTextToImageApi",
        "WanTextToVideoApi",
    ),
    "comfy_extras": (
        "ARVideoI2V", "AnimaLLLiteApply", "ApplyTextureToMesh", "BakeAmbientOcclusion",
        "BakeNormalMapFromMesh", "BakeTextureFromVoxel", "BerniniConditioning", "BlockSparseAttention",
        "BuildJsonPromptIdeogram", "BuildPoseFile", "CFGOverride", "CameraAngle", "ColorToRGBInt",
        "ColorTransfer", "ComfyMathExpression", "ComfyNumberConvert", "ConditioningLoader",
        "ConvertArrayToString", "ConvertDictionaryToString", "CreateBoundingBoxes", "CreateCameraInfo",
        "CreateList", "CurveEditor", "DA3Inference", "DA3Render", "DecimateMesh", "DrawBBoxes",
        "DualModelGuider", "EmptyAceStep1.5LatentAudio", "EmptyHiDreamO1LatentImage",
        "EmptyHunyuanVideo15Latent", "EmptyMiniMaxMusic3LatentAudio", "EmptyTrellis2LatentStructure",
        "EmptyYuE2LatentAudio", "EndLoop", "Flux3LayoutPrompt", "FluxKVCache", "FrameInterpolate",
        "FrameInterpolationModelLoader", "GLSLShader", "GetICLoRAParameters", "GetItemFromList",
        "GetMeshInfo", "HiDreamO1PatchSeamSmoothing", "HiDreamO1ReferenceImages", "Ideogram4Scheduler",
        "ImageCompare", "ImageCompositor", "ImageCropToMask", "ImageCropV2", "ImageHistogram",
        "JsonExtractString", "LTXVDualCFGGuider", "LTXVReferenceAudio", "LoadBackgroundRemovalModel",
        "LoadDA3Model", "LoadMoGeModel", "MOSSImageControl", "MOSSImageLayoutPrompt", "MarigoldV2PostProcess",
        "MeshSmoothNormals", "MeshToFile3D", "MiniMaxH3AddGuide", "MiniMaxH3FunControlNetApply",
        "MiniMaxH3ImageToVideo", "MiniMaxH3ReferenceToVideo", "MiniMaxH3SigmaShift",
        "MiniMaxMusic3TextEncode", "MoGeGeometryToFOV", "MoGeInference", "MoGePanoramaInference",
        "MoGePointMapToMesh", "MoGeRender", "ModelAttentionBackend", "ModelNoiseScale", "OpticalFlowLoader",
        "PaintMesh", "Painter", "PiDConditioning", "Pixal3DConditioning", "Pixal3DMultiViewConditioning",
        "Preview3DAdvanced", "QwenImage21Cache", "RTDETR_detect", "ReferenceMultiLatent", "RemeshMesh",
        "RemoveBackground", "RenderSplat", "RenderUVAtlas", "ResizeImagesByLongerEdge", "ResolutionSelector",
        "SAM3DBody_FaceExpression", "SAM3DBody_Loader", "SAM3DBody_Predict", "SAM3DBody_Render",
        "SAM3DBody_Smooth", "SAM3_Detect", "SAM3_VideoTrack", "SCAIL2ColoredMask", "SDPoseDrawKeypoints",
        "SDPoseKeypointExtractor", "SamplerARVideo", "SamplerLCM", "Save3DAdvanced", "SaveAudioAdvanced",
        "SaveImageAdvanced", "SaveText", "SeedNode", "SeedVR2Conditioning", "SeedVR2PostProcessing",
        "SeedVR2Preprocess", "SeedVR2TemporalChunk", "SeedVR2TemporalMerge", "SheetSage2AudioToABC",
        "SplatToFile3D", "SplatToMesh", "StartLoop", "StringFormat", "TextEncodeAceStepAudio1.5",
        "TextEncodeBooguEdit", "TextEncodeFibo2", "TextEncodeJoyImageEdit", "TextEncodeMOSSImageEdit",
        "TextEncodeMageFlowEdit", "TextEncodeMingImageEdit", "TextEncodeQwenImage21", "TextGenerate",
        "TextGenerateLTX2Prompt", "Trellis2Conditioning", "Trellis2ShapeStage", "Trellis2TextureStage",
        "Trellis2UpsampleStage", "TripoSplatConditioning", "TripoSplatPreprocessImage",
        "TripoSplatSamplingPreview", "UnwrapMesh", "VAEDecodeAudioTiled", "VAEDecodeTripoSplat",
        "VOIDInpaintConditioning", "VOIDSampler", "VOIDWarpedNoise", "VOIDWarpedNoiseSource",
        "VaeDecodeShapeTrellis", "VaeDecodeStructureTrellis2", "VaeDecodeTextureTrellis", "Video Slice",
        "WanAnimate2Cache", "WanAnimate2ToVideo", "WanDancerEncodeAudio", "WanDancerPadKeyframesList",
        "WanDancerVideo", "WanInfiniteTalkToVideo", "WanSCAILToVideo", "YuE2GenerateABC", "YuE2GenerateMusic",
    ),
    "comfy_extras.nodes_ace": (
        "EmptyAceStepLatentAudio", "TextEncodeAceStepAudio",
    ),
    "comfy_extras.nodes_advanced_samplers": (
        "SamplerEulerCFGpp", "SamplerLCMUpscale",
    ),
    "comfy_extras.nodes_align_your_steps": (
        "AlignYourStepsScheduler",
    ),
    "comfy_extras.nodes_apg": (
        "APG",
    ),
    "comfy_extras.nodes_attention_multiply": (
        "CLIPAttentionMultiply", "UNetCrossAttentionMultiply", "UNetSelfAttentionMultiply",
        "UNetTemporalAttentionMultiply",
    ),
    "comfy_extras.nodes_audio": (
        "AudioAdjustVolume", "AudioConcat", "AudioMerge", "ConditioningStableAudio", "EmptyAudio",
        "EmptyLatentAudio", "LoadAudio", "PreviewAudio", "RecordAudio", "SaveAudio", "SaveAudioMP3",
        "SaveAudioOpus", "SplitAudioChannels", "TrimAudioDuration", "VAEDecodeAudio", "VAEEncodeAudio",
    ),
    "comfy_extras.nodes_audio_encoder": (
        "AudioEncoderEncode", "AudioEncoderLoader",
    ),
    "comfy_extras.nodes_camera_trajectory": (
        "WanCameraEmbedding",
    ),
    "comfy_extras.nodes_canny": (
        "Canny",
    ),
    "comfy_extras.nodes_cfg": (
        "CFGNorm", "CFGZeroStar",
    ),
    "comfy_extras.nodes_chroma_radiance": (
        "ChromaRadianceOptions", "EmptyChromaRadianceLatentImage",
    ),
    "comfy_extras.nodes_clip_sdxl": (
        "CLIPTextEncodeSDXL", "CLIPTextEncodeSDXLRefiner",
    ),
    "comfy_extras.nodes_compositing": (
        "JoinImageWithAlpha", "PorterDuffImageComposite", "SplitImageWithAlpha",
    ),
    "comfy_extras.nodes_cond": (
        "CLIPTextEncodeControlnet", "T5TokenizerOptions",
    ),
    "comfy_extras.nodes_context_windows": (
        "ContextWindowsManual",
    ),
    "comfy_extras.nodes_controlnet": (
        "ControlNetInpaintingAliMamaApply", "SetUnionControlNetType",
    ),
    "comfy_extras.nodes_cosmos": (
        "CosmosImageToVideoLatent", "CosmosPredict2ImageToVideoLatent", "EmptyCosmosLatentVideo",
    ),
    "comfy_extras.nodes_custom_sampler": (
        "AddNoise", "BasicGuider", "BasicScheduler", "BetaSamplingScheduler", "CFGGuider", "DisableNoise",
        "DualCFGGuider", "ExponentialScheduler", "ExtendIntermediateSigmas", "FlipSigmas", "KSamplerSelect",
        "KarrasScheduler", "LaplaceScheduler", "ManualSigmas", "PolyexponentialScheduler", "RandomNoise",
        "SDTurboScheduler", "SamplerCustom", "SamplerCustomAdvanced", "SamplerDPMAdaptative",
        "SamplerDPMPP_2M_SDE", "SamplerDPMPP_2S_Ancestral", "SamplerDPMPP_3M_SDE", "SamplerDPMPP_SDE",
        "SamplerER_SDE", "SamplerEulerAncestral", "SamplerEulerAncestralCFGPP", "SamplerLMS",
        "SamplerSASolver", "SamplerSEEDS2", "SamplingPercentToSigma", "SetFirstSigma", "SplitSigmas",
        "SplitSigmasDenoise", "VPScheduler",
    ),
    "comfy_extras.nodes_dataset": (
        "LoadImageDataSetFromFolder", "LoadImageTextDataSetFromFolder", "LoadTrainingDataset",
        "MakeTrainingDataset", "ResolutionBucket", "SaveImageDataSetToFolder", "SaveImageTextDataSetToFolder",
        "SaveTrainingDataset", "ShuffleImageTextDataset",
    ),
    "comfy_extras.nodes_differential_diffusion": (
        "DifferentialDiffusion",
    ),
    "comfy_extras.nodes_easycache": (
        "EasyCache", "LazyCache",
    ),
    "comfy_extras.nodes_edit_model": (
        "ReferenceLatent",
    ),
    "comfy_extras.nodes_eps": (
        "Epsilon Scaling", "TemporalScoreRescaling",
    ),
    "comfy_extras.nodes_flux": (
        "CLIPTextEncodeFlux", "EmptyFlux2LatentImage", "Flux2Scheduler", "FluxDisableGuidance",
        "FluxGuidance", "FluxKontextImageScale", "FluxKontextMultiReferenceLatentMethod",
    ),
    "comfy_extras.nodes_freelunch": (
        "FreeU", "FreeU_V2",
    ),
    "comfy_extras.nodes_fresca": (
        "FreSca",
    ),
    "comfy_extras.nodes_gits": (
        "GITSScheduler",
    ),
    "comfy_extras.nodes_hidream": (
        "CLIPTextEncodeHiDream", "QuadrupleCLIPLoader",
    ),
    "comfy_extras.nodes_hunyuan": (
        "CLIPTextEncodeHunyuanDiT", "EmptyHunyuanImageLatent", "EmptyHunyuanLatentVideo",
        "HunyuanImageToVideo", "HunyuanRefinerLatent", "HunyuanVideo15ImageToVideo",
        "HunyuanVideo15LatentUpscaleWithModel", "HunyuanVideo15SuperResolution", "LatentUpscaleModelLoader",
        "TextEncodeHunyuanVideo_ImageToVideo",
    ),
    "comfy_extras.nodes_hunyuan3d": (
        "EmptyLatentHunyuan3Dv2", "Hunyuan3Dv2Conditioning", "Hunyuan3Dv2ConditioningMultiView", "SaveGLB",
        "VAEDecodeHunyuan3D", "VoxelToMesh", "VoxelToMeshBasic",
    ),
    "comfy_extras.nodes_hypernetwork": (
        "HypernetworkLoader",
    ),
    "comfy_extras.nodes_hypertile": (
        "HyperTile",
    ),
    "comfy_extras.nodes_images": (
        "GetImageSize", "ImageAddNoise", "ImageCrop", "ImageFlip", "ImageFromBatch", "ImageRotate",
        "ImageScaleToMaxDimension", "ImageStitch", "RepeatImageBatch", "ResizeAndPadImage", "SaveAnimatedPNG",
        "SaveAnimatedWEBP", "SaveSVGNode",
    ),
    "comfy_extras.nodes_ip2p": (
        "InstructPixToPixConditioning",
    ),
    "comfy_extras.nodes_kandinsky5": (
        "CLIPTextEncodeKandinsky5", "Kandinsky5ImageToVideo", "NormalizeVideoLatentStart",
    ),
    "comfy_extras.nodes_latent": (
        "LatentAdd", "LatentApplyOperation", "LatentApplyOperationCFG", "LatentBatch",
        "LatentBatchSeedBehavior", "LatentConcat", "LatentCut", "LatentCutToBatch", "LatentInterpolate",
        "LatentMultiply", "LatentOperationSharpen", "LatentOperationTonemapReinhard", "LatentSubtract",
        "ReplaceVideoLatentFrames",
    ),
    "comfy_extras.nodes_load_3d": (
        "Load3D", "Preview3D",
    ),
    "comfy_extras.nodes_logic": (
        "AutogrowNamesTestNode", "AutogrowPrefixTestNode", "ComboOptionTestNode", "ComfySoftSwitchNode",
        "ComfySwitchNode", "ConvertStringToComboNode", "CustomCombo", "DCTestNode", "InvertBooleanNode",
    ),
    "comfy_extras.nodes_lora_extract": (
        "LoraSave",
    ),
    "comfy_extras.nodes_lotus": (
        "LotusConditioning",
    ),
    "comfy_extras.nodes_lt": (
        "EmptyLTXVLatentVideo", "LTXVAddGuide", "LTXVConcatAVLatent", "LTXVConditioning", "LTXVCropGuides",
        "LTXVImgToVideo", "LTXVImgToVideoInplace", "LTXVPreprocess", "LTXVScheduler", "LTXVSeparateAVLatent",
        "ModelSamplingLTXV",
    ),
    "comfy_extras.nodes_lt_audio": (
        "LTXAVTextEncoderLoader", "LTXVAudioVAEDecode", "LTXVAudioVAEEncode", "LTXVAudioVAELoader",
        "LTXVEmptyLatentAudio",
    ),
    "comfy_extras.nodes_lt_upsampler": (
        "LTXVLatentUpsampler",
    ),
    "comfy_extras.nodes_lumina2": (
        "CLIPTextEncodeLumina2", "RenormCFG",
    ),
    "comfy_extras.nodes_mahiro": (
        "Mahiro",
    ),
    "comfy_extras.nodes_mask": (
        "CropMask", "FeatherMask", "GrowMask", "ImageColorToMask", "ImageCompositeMasked", "ImageToMask",
        "InvertMask", "LatentCompositeMasked", "MaskComposite", "MaskPreview", "MaskToImage", "SolidMask",
        "ThresholdMask",
    ),
    "comfy_extras.nodes_mochi": (
        "EmptyMochiLatentVideo",
    ),
    "comfy_extras.nodes_model_advanced": (
        "ModelComputeDtype", "ModelSamplingAuraFlow", "ModelSamplingContinuousEDM",
        "ModelSamplingContinuousV", "ModelSamplingDiscrete", "ModelSamplingFlux", "ModelSamplingSD3",
        "ModelSamplingStableCascade", "RescaleCFG",
    ),
    "comfy_extras.nodes_model_downscale": (
        "PatchModelAddDownscale",
    ),
    "comfy_extras.nodes_model_merging": (
        "CLIPMergeAdd", "CLIPMergeSimple", "CLIPMergeSubtract", "CLIPSave", "CheckpointSave", "ModelMergeAdd",
        "ModelMergeBlocks", "ModelMergeSimple", "ModelMergeSubtract", "ModelSave", "VAESave",
    ),
    "comfy_extras.nodes_model_merging_model_specific": (
        "ModelMergeAuraflow", "ModelMergeCosmos14B", "ModelMergeCosmos7B", "ModelMergeCosmosPredict2_14B",
        "ModelMergeCosmosPredict2_2B", "ModelMergeFlux1", "ModelMergeLTXV", "ModelMergeMochiPreview",
        "ModelMergeQwenImage", "ModelMergeSD1", "ModelMergeSD2", "ModelMergeSD35_Large", "ModelMergeSD3_2B",
        "ModelMergeSDXL", "ModelMergeWAN2_1",
    ),
    "comfy_extras.nodes_model_patch": (
        "ModelPatchLoader", "QwenImageDiffsynthControlnet", "USOStyleReference", "ZImageFunControlnet",
    ),
    "comfy_extras.nodes_morphology": (
        "ImageRGBToYUV", "ImageYUVToRGB", "Morphology",
    ),
    "comfy_extras.nodes_nop": (
        "wanBlockSwap",
    ),
    "comfy_extras.nodes_optimalsteps": (
        "OptimalStepsScheduler",
    ),
    "comfy_extras.nodes_pag": (
        "PerturbedAttentionGuidance",
    ),
    "comfy_extras.nodes_perpneg": (
        "PerpNeg", "PerpNegGuider",
    ),
    "comfy_extras.nodes_photomaker": (
        "PhotoMakerEncode", "PhotoMakerLoader",
    ),
    "comfy_extras.nodes_pixart": (
        "CLIPTextEncodePixArtAlpha",
    ),
    "comfy_extras.nodes_post_processing": (
        "BatchImagesMasksLatentsNode", "BatchImagesNode", "BatchLatentsNode", "BatchMasksNode", "ImageBlend",
        "ImageBlur", "ImageQuantize", "ImageScaleToTotalPixels", "ImageSharpen", "ResizeImageMaskNode",
    ),
    "comfy_extras.nodes_preview_any": (
        "PreviewAny",
    ),
    "comfy_extras.nodes_primitive": (
        "PrimitiveBoolean", "PrimitiveFloat", "PrimitiveInt", "PrimitiveString", "PrimitiveStringMultiline",
    ),
    "comfy_extras.nodes_qwen": (
        "EmptyQwenImageLayeredLatentImage", "TextEncodeQwenImageEdit", "TextEncodeQwenImageEditPlus",
    ),
    "comfy_extras.nodes_rebatch": (
        "RebatchImages", "RebatchLatents",
    ),
    "comfy_extras.nodes_rope": (
        "ScaleROPE",
    ),
    "comfy_extras.nodes_sag": (
        "SelfAttentionGuidance",
    ),
    "comfy_extras.nodes_sd3": (
        "CLIPTextEncodeSD3", "ControlNetApplySD3", "EmptySD3LatentImage", "SkipLayerGuidanceSD3",
        "TripleCLIPLoader",
    ),
    "comfy_extras.nodes_sdupscale": (
        "SD_4XUpscale_Conditioning",
    ),
    "comfy_extras.nodes_slg": (
        "SkipLayerGuidanceDiT", "SkipLayerGuidanceDiTSimple",
    ),
    "comfy_extras.nodes_stable3d": (
        "SV3D_Conditioning", "StableZero123_Conditioning", "StableZero123_Conditioning_Batched",
    ),
    "comfy_extras.nodes_stable_cascade": (
        "StableCascade_EmptyLatentImage", "StableCascade_StageB_Conditioning",
        "StableCascade_StageC_VAEEncode", "StableCascade_SuperResolutionControlnet",
    ),
    "comfy_extras.nodes_string": (
        "CaseConverter", "RegexExtract", "RegexMatch", "RegexReplace", "StringCompare", "StringConcatenate",
        "StringContains", "StringLength", "StringReplace", "StringSubstring", "StringTrim",
    ),
    "comfy_extras.nodes_tcfg": (
        "TCFG",
    ),
    "comfy_extras.nodes_tomesd": (
        "TomePatchModel",
    ),
    "comfy_extras.nodes_torch_compile": (
        "TorchCompileModel",
    ),
    "comfy_extras.nodes_train": (
        "LoraModelLoader", "LossGraphNode", "SaveLoRA", "TrainLoraNode",
    ),
    "comfy_extras.nodes_upscale_model": (
        "ImageUpscaleWithModel", "UpscaleModelLoader",
    ),
    "comfy_extras.nodes_video": (
        "CreateVideo", "GetVideoComponents", "LoadVideo", "SaveVideo", "SaveWEBM",
    ),
    "comfy_extras.nodes_video_model": (
        "ConditioningSetAreaPercentageVideo", "ImageOnlyCheckpointLoader", "ImageOnlyCheckpointSave",
        "SVD_img2vid_Conditioning", "VideoLinearCFGGuidance", "VideoTriangleCFGGuidance",
    ),
    "comfy_extras.nodes_wan": (
        "TrimVideoLatent", "Wan22FunControlToVideo", "Wan22ImageToVideoLatent", "WanAnimateToVideo",
        "WanCameraImageToVideo", "WanFirstLastFrameToVideo", "WanFunControlToVideo", "WanFunInpaintToVideo",
        "WanHuMoImageToVideo", "WanImageToVideo", "WanPhantomSubjectToVideo", "WanSoundImageToVideo",
        "WanSoundImageToVideoExtend", "WanTrackToVideo", "WanVaceToVideo",
    ),
    "comfy_extras.nodes_wanmove": (
        "GenerateTracks", "WanMoveConcatTrack", "WanMoveTrackToVideo", "WanMoveTracksFromCoords",
        "WanMoveVisualizeTracks",
    ),
    "comfy_extras.nodes_webcam": (
        "WebcamCapture",
    ),
    "nodes": (
        "CLIPLoader", "CLIPSetLastLayer", "CLIPTextEncode", "CLIPVisionEncode", "CLIPVisionLoader",
        "CheckpointLoader", "CheckpointLoaderSimple", "ConditioningAverage", "ConditioningCombine",
        "ConditioningConcat", "ConditioningSetArea", "ConditioningSetAreaPercentage",
        "ConditioningSetAreaStrength", "ConditioningSetMask", "ConditioningSetTimestepRange",
        "ConditioningZeroOut", "ControlNetApply", "ControlNetApplyAdvanced", "ControlNetLoader",
        "DiffControlNetLoader", "DiffusersLoader", "DualCLIPLoader", "EmptyImage", "EmptyLatentImage",
        "GLIGENLoader", "GLIGENTextBoxApply", "ImageBatch", "ImageInvert", "ImagePadForOutpaint",
        "ImageScale", "ImageScaleBy", "InpaintModelConditioning", "KSampler", "KSamplerAdvanced",
        "LatentBlend", "LatentComposite", "LatentCrop", "LatentFlip", "LatentFromBatch", "LatentRotate",
        "LatentUpscale", "LatentUpscaleBy", "LoadImage", "LoadImageMask", "LoadImageOutput", "LoadLatent",
        "LoraLoader", "LoraLoaderModelOnly", "PreviewImage", "RepeatLatentBatch", "SaveImage", "SaveLatent",
        "SetLatentNoiseMask", "StyleModelApply", "StyleModelLoader", "UNETLoader", "VAEDecode",
        "VAEDecodeTiled", "VAEEncode", "VAEEncodeForInpaint", "VAEEncodeTiled", "VAELoader",
        "unCLIPCheckpointLoader", "unCLIPConditioning",
    ),
}

_MODULE_OF = {name: module for module, names in COMFYUI_MODULES.items() for name in names}


def reported_module(name: str, python_module: str | None) -> str | None:
    """What /object_info says for a node: ComfyUI's module when Hearth's own code serves one of ComfyUI's core
    nodes (the frontend shows those as core, not as an unknown extension); a pack's node keeps its own."""
    if python_module and python_module.split(".")[0].startswith("hearth") and name in _MODULE_OF:
        return _MODULE_OF[name]
    return python_module
