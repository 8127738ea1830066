// Public API of src/tokenizer: each module adds its exports here.
export {};
