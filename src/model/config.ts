/**
 * The model configuration, grouped like SPEC §1. Field names are the camelCase of the Hugging
 * Face `config.json` keys (given in each comment) so a reader maps them without a table.
 */

/** YaRN context extension (HF `rope_scaling` with type "yarn"), SPEC §3.5. */
export interface YarnConfig {
  /** `factor`: the scale s. */
  factor: number;
  /** `original_max_position_embeddings`: L₀, the pre-training context. */
  originalMaxPositionEmbeddings: number;
  /** `beta_fast` (α): rotations at which frequencies start to be interpolated. */
  betaFast: number;
  /** `beta_slow` (β). */
  betaSlow: number;
  /** `mscale`: HF cos/sin attention factor numerator. */
  mscale: number;
  /** `mscale_all_dim`: softmax-scale correction m (official `mscale`). */
  mscaleAllDim: number;
}

export interface ModelConfig {
  /** `vocab_size`: rows of the embedding and of the LM head. */
  vocabSize: number;
  /** `hidden_size`: d. */
  hiddenSize: number;
  /** `num_hidden_layers`: main-model blocks (MTP layers are extra). */
  numHiddenLayers: number;
  /** `first_k_dense_replace`: layers i < this use the dense MLP, the rest MoE. */
  firstKDenseReplace: number;
  /** `intermediate_size`: width of the dense SwiGLU MLP. */
  intermediateSize: number;
  /** `rms_norm_eps` (1e-6 in V3; the official code hard-codes it). */
  rmsNormEps: number;

  // mla
  /** `num_attention_heads`: H. */
  numAttentionHeads: number;
  /** `q_lora_rank`: query latent width; 0 (HF null) = no query compression (`q_proj`). */
  qLoraRank: number;
  /** `kv_lora_rank`: KV latent width C. */
  kvLoraRank: number;
  /** `qk_nope_head_dim`: n. */
  qkNopeHeadDim: number;
  /** `qk_rope_head_dim`: R (even). */
  qkRopeHeadDim: number;
  /** `v_head_dim`. */
  vHeadDim: number;

  // rope / yarn
  /** `rope_theta`: RoPE base. */
  ropeTheta: number;
  /** `rope_scaling`: YaRN parameters, or null for plain RoPE. */
  ropeScaling: YarnConfig | null;
  /** `max_position_embeddings`. */
  maxPositionEmbeddings: number;

  // moe
  /** `n_routed_experts`: E. */
  nRoutedExperts: number;
  /** `n_shared_experts`: fused into one MLP of width nSharedExperts·moeIntermediateSize. */
  nSharedExperts: number;
  /** `num_experts_per_tok`: K. */
  numExpertsPerTok: number;
  /** `moe_intermediate_size`: width of each routed expert. */
  moeIntermediateSize: number;
  /** `n_group`: expert groups (contiguous blocks of E/nGroup experts). */
  nGroup: number;
  /** `topk_group`: groups a token may use. */
  topkGroup: number;
  /** `scoring_func`. */
  scoringFunc: 'sigmoid' | 'softmax';
  /** `norm_topk_prob`: renormalise the K selected weights (true iff sigmoid in the official code). */
  normTopkProb: boolean;
  /** `routed_scaling_factor`: multiplies the routed weights only. */
  routedScalingFactor: number;
  /** `topk_method`: "noaux_tc" ⇒ the router has `e_score_correction_bias`; "greedy" ⇒ no bias. */
  topkMethod: 'noaux_tc' | 'greedy';

  // mtp
  /** `num_nextn_predict_layers`: MTP depth D (0 = no MTP modules). */
  numNextnPredictLayers: number;

  // tokens
  /** `bos_token_id`. */
  bosTokenId: number;
  /** `eos_token_id`. */
  eosTokenId: number;
}
